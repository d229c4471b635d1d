"""The training loop: ``train_and_evaluate(config, workdir)``.

The only module that owns a loop:

  run = Experiment(config)                  gan_jax/run.py: data, models, mesh, compiled step
  state = latest good checkpoint or init    gan_jax/checkpointing.py
  for step in range(start, num_steps):
    state, metrics, health = run.step_fn(state, data, health)
    log, pictures + FD, checkpoint          gan_jax/hooks.py (each at its own cadence)

Each train step is one compiled call that draws its real batches from the on-device dataset and
its latents from a key derived from ``(seed, step)`` (``steps.train_step_on_data``), so a resumed
run repeats the batches of an uninterrupted one exactly. A dataset too big for that streams
(``gan_jax.data.stream``): the step takes the feed's next batches, and each checkpoint holds the
feed's position, so resumption stays exact. Metrics are fetched from the device only
at log steps, so dispatch runs ahead of the host. The workdir (lock, config.json) is
gan_jax/workdir.py.
"""

import time

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from gan_jax import checkpointing, config_base, hooks, parallel, workdir
from gan_jax.run import Experiment
from gan_jax.state import GANState


def train_and_evaluate(config: ml_collections.ConfigDict, workdir_path: str) -> GANState:
  """Trains (or resumes) the run in ``workdir_path``; returns the final state.

  Everything that can be wrong with the input (config values, workdir, data) is checked before
  anything is written. SIGTERM saves a checkpoint at the current step and returns.
  """
  config_base.validate_config(config)
  workdir.check_writable(workdir_path)
  write_config = workdir.check_config_matches(
      config, workdir.path(workdir_path, workdir.CONFIG_FILE))
  exp = Experiment(config)  # loads and validates the data, builds the models
  exp.evaluator  # loads the classifier and the test split now: its errors come before any write
  main = parallel.is_main_process()  # only process 0 writes files besides checkpoints
  if main:
    workdir.create(workdir_path)
  lock = workdir.WorkdirLock(workdir_path)
  if main:
    lock.acquire()
  try:
    if main:
      workdir.save_run_info(workdir_path, config, exp.source.info, write_config)
    with hooks.StopSignals() as signals:
      return _train(exp, workdir_path, signals)
  finally:
    lock.release()


def _over_budget(t0: float, budget: float) -> bool:
  """Whether ``budget`` seconds have passed since ``t0`` on any process (the same answer on
  every process: all of them must stop, evaluate and save at the same step)."""
  over = time.time() - t0 >= budget
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    over = bool(np.any(multihost_utils.process_allgather(np.int32(over))))
  return over


def _compile(exp: Experiment, state, health):
  """The compiled train step and the seconds its compilation took."""
  t0 = time.time()
  compiled = exp.step_fn.lower(state, exp.data_spec(), health).compile()
  return compiled, time.time() - t0


def _train(exp: Experiment, workdir_path: str, signals: hooks.StopSignals) -> GANState:
  config = exp.config
  say = hooks.say_on_main
  feed = exp.stream_feed()  # None: the data lives on the device
  ckpt = checkpointing.Checkpoints(workdir.path(workdir_path, workdir.CHECKPOINTS),
                                   keep=config.keep_checkpoints, every=config.checkpoint_every,
                                   data=feed)
  start, state = ckpt.restore_latest_good(exp.abstract_state())
  if start is None:
    state, start = exp.init_state(), 0
  else:
    say(f'Resuming {config.name} from step {start} ({workdir_path}/checkpoints)')
  final_png = workdir.path(workdir_path, workdir.SAMPLES, 'final.png')
  if start >= config.num_steps:
    hooks.write_samples(exp, state, final_png, start)  # every process takes part
    say(f'{config.name}: run already finished at step {start} of {config.num_steps}; '
        f'nothing to do ({workdir_path})')
    ckpt.close()
    return state

  main = parallel.is_main_process()
  writers = hooks.Writers(workdir_path) if main else hooks.NullWriters()
  best = (checkpointing.BestCheckpoint(workdir.path(workdir_path, workdir.BEST_CHECKPOINTS), 'fd')
          if exp.evaluator else None)
  arrays, health = exp.device_arrays(), exp.new_health()
  next_data = feed.next if feed is not None else lambda: arrays
  t0 = time.time()
  budget = config.get('time_budget_s', 0.0)
  step_fn, compile_s = _compile(exp, state, health)
  bar = tqdm(total=config.num_steps, initial=start, desc=config.name, unit='step',
             dynamic_ncols=True, mininterval=1.0, disable=not main)
  actions = [
      hooks.LogMetrics(config.log_every, writers, ckpt, bar, start),
      hooks.SamplesAndEval(config.eval_every, exp, workdir.path(workdir_path, workdir.SAMPLES),
                           writers, ckpt, best, say),
      hooks.SaveCheckpoint(ckpt),
  ]
  stopped = None
  try:
    for step in range(start, config.num_steps):
      state, metrics, health = step_fn(state, next_data(), health)
      bar.update(1)
      done = step + 1
      if feed is not None and done % config.log_every == 0 and feed.new_skips():
        say(f'{config.name}: {feed.local.skipped} unreadable files skipped so far '
            '(config.data.skip_bad_files=True)')
      # config.time_budget_s ends the run like num_steps (a final eval and checkpoint), checked
      # at log steps.
      over = budget > 0 and done % config.log_every == 0 and _over_budget(t0, budget)
      stopped = signals.agreed(done, config.log_every) or ('the time budget' if over else None)
      ctx = hooks.StepContext(done, state, metrics, health, stop=stopped,
                              last=done == config.num_steps or over)
      for action in actions:
        action(ctx)
      if stopped:
        break
  finally:
    bar.close()
    writers.close()
    ckpt.close()
    if feed is not None:
      feed.close()
    if best:
      best.close()
  if stopped and not over:
    say(f'{config.name}: received {stopped} at step {done}; saved a checkpoint at step {done} '
        f'and stopped. Relaunch the same command to continue.')
    return state
  hooks.write_samples(exp, state, final_png, done)
  jax.block_until_ready(state)
  why = ' (config.time_budget_s)' if over else ''
  say(f'{config.name}: finished {done} steps{why} in {time.time() - t0:.1f}s '
      f'(compile {compile_s:.1f}s); samples in {final_png}')
  return state
