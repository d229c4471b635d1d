"""Periodic actions of the training loop: log, pictures + evaluation, checkpoint, NaN watch,
preemption. The ``clu.periodic_actions`` idea, kept to what the loop needs.

The loop (``gan_jax.train``) runs a step and then calls every action with a ``StepContext``; each
action decides from the step number whether it is due. Order matters and is the loop's: the log
and the evaluation run before the checkpoint, and every action that reads or saves the state first
reads the on-device health word, and every save first checks that the state itself is finite,
so a poisoned state is never saved.
"""

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import images, parallel
from gan_jax.errors import TrainingDiverged
from gan_jax.evaluation.modes import mode_metrics

# Metrics watched for NaN/Inf on the device, one bit each in the health word.
HEALTH_KEYS = ('loss_D', 'loss_G', 'grad_norm_D', 'grad_norm_G')


def new_health():
  """The health word of a fresh run: int32 ``[first non-finite step or -1, bitmask]``."""
  return jnp.array([-1, 0], jnp.int32)


def update_health(health, metrics, step):
  """On the device: records the first ``step`` at which any ``HEALTH_KEYS`` metric is not finite,
  and which ones (a bitmask over ``HEALTH_KEYS``). Later steps leave the record as it is."""
  bad = jnp.stack([~jnp.isfinite(metrics[k]) for k in HEALTH_KEYS])
  mask = jnp.sum(bad.astype(jnp.int32) << jnp.arange(len(HEALTH_KEYS)))
  first = (health[0] < 0) & (mask > 0)
  return jnp.where(first, jnp.stack([step, mask]), health)


def check_health(health, ckpt, step_hint: int):
  """Raises TrainingDiverged, naming the step, the metrics and the last good checkpoint, when the
  health word records a non-finite metric (one small device-to-host read)."""
  first, mask = (int(v) for v in jax.device_get(health))
  if first < 0:
    return
  which = [k for i, k in enumerate(HEALTH_KEYS) if mask >> i & 1]
  raise TrainingDiverged(
      f'non-finite {", ".join(which)} at step {first} (noticed at step {step_hint}); stopped '
      f'without saving the poisoned state; last good checkpoint: {_last_good(ckpt, first)}')


def _last_good(ckpt, step: int) -> str:
  """The newest checkpoint before ``step``, for the divergence messages."""
  good = [s for s in ckpt.all_steps() if s < step]
  return f'step {good[-1]} in {ckpt.directory}' if good else 'none'


@jax.jit
def _non_finite_leaves(state):
  """On the device: the number of floating leaves of ``state`` holding a NaN or Inf."""
  leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
  return sum(jnp.any(~jnp.isfinite(x)).astype(jnp.int32) for x in leaves)


def check_state_finite(state, ckpt, step: int):
  """Raises TrainingDiverged when any floating leaf of ``state`` (params, optimizer moments, BN
  statistics, EMA) is not finite: an update can overflow the weights while the metrics it was
  computed from were still finite. Called before every save; one scalar comes to the host."""
  bad = int(_non_finite_leaves(state))
  if bad:
    raise TrainingDiverged(
        f'the state at step {step} holds non-finite values in {bad} array(s) (params, optimizer '
        f'or EMA); stopped without saving it; last good checkpoint: {_last_good(ckpt, step)}')


@dataclasses.dataclass
class StepContext:
  """What the loop hands each action after a step: ``step`` completed train steps, the new
  ``state``, its ``metrics`` (device arrays) and ``health``; ``last`` at the final step, ``stop``
  the name of an agreed stop signal or None."""
  step: int
  state: Any
  metrics: Any
  health: Any
  last: bool
  stop: Optional[str] = None


class NullWriters:
  """What processes other than 0 write: nothing."""

  def scalars(self, step, metrics):
    pass

  def image(self, step, tag, array):
    pass

  def close(self):
    pass


class Writers(NullWriters):
  """metrics.jsonl + TensorBoard event files (tensorboardX: no TensorFlow needed)."""

  def __init__(self, workdir):
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self.jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
    self.tb = SummaryWriter(os.path.join(workdir, 'tb'))

  def scalars(self, step, metrics):
    self.jsonl.write(json.dumps({'step': step, **metrics}) + '\n')
    self.jsonl.flush()
    for k, v in metrics.items():
      self.tb.add_scalar(k, v, step)

  def image(self, step, tag, array):
    self.tb.add_image(tag, array, step, dataformats='HWC')

  def close(self):
    self.jsonl.close()
    self.tb.close()


def write_samples(exp, state, path: str, step: int):
  """The fixed-latent picture of ``exp`` (a ``run.Experiment``) at ``step``: an image grid, or a
  2-D scatter plot against real data.

  Every process computes the samples (one global computation); only process 0 writes the file.
  Returns (picture as uint8 HWC, metrics): for 2-D mixtures the mode metrics of those latents.
  """
  n = exp.config.num_grid
  z, labels, ncol = exp.grid_inputs(n)
  fake = np.asarray(exp.generate_fn(state, z, labels=labels))
  write = parallel.is_main_process()
  if len(exp.data_shape) == 1:
    m = mode_metrics(fake, exp.source.info['centers'], exp.source.info['std'])
    metrics = {f'eval/{k}': v for k, v in m.items()}
    if not write:
      return None, metrics
    real = jax.device_get(exp.source.draw(exp.source.arrays, jax.random.key(0), n)['image'])
    title = (f'{exp.config.name} step {step}: {m["modes_covered"]}/{m["num_modes"]} modes, '
             f'{100 * m["high_quality"]:.0f}% high quality')
    return images.scatter_png(real, fake, path, title=title), metrics
  pic = images.grid(fake, ncol=ncol)  # conditional: one row per class
  if write:
    images.save_png(pic, path, scale=2)
  return pic, {}


class LogMetrics:
  """Every ``every`` steps (and at the last): checks health, fetches the metrics, adds steps/s,
  writes them and shows the losses on the progress bar."""

  def __init__(self, every: int, writers, ckpt, bar, start_step: int):
    self.every, self.writers, self.ckpt, self.bar = every, writers, ckpt, bar
    self._t, self._step = time.time(), start_step

  def __call__(self, ctx: StepContext):
    if ctx.step % self.every and not ctx.last:
      return
    check_health(ctx.health, self.ckpt, ctx.step)
    m = {k: float(v) for k, v in jax.device_get(ctx.metrics).items()}
    now = time.time()
    m['steps_per_s'] = (ctx.step - self._step) / max(now - self._t, 1e-9)
    self._t, self._step = now, ctx.step
    self.writers.scalars(ctx.step, m)
    self.bar.set_postfix(loss_D=f'{m["loss_D"]:.3f}', loss_G=f'{m["loss_G"]:.3f}', refresh=False)


class SamplesAndEval:
  """Every ``every`` steps (and at the last): the fixed-latent picture, and with an evaluator
  the in-training FD and score, keeping the best state by FD in ``best``."""

  def __init__(self, every: int, exp, samples_dir: str, writers, ckpt, best,
               say: Callable[[str], None]):
    self.every, self.exp, self.dir, self.writers = every, exp, samples_dir, writers
    self.ckpt, self.best, self.say = ckpt, best, say

  def __call__(self, ctx: StepContext):
    if ctx.step % self.every and not ctx.last:
      return
    exp = self.exp
    pic, metrics = write_samples(exp, ctx.state, os.path.join(self.dir, f'step_{ctx.step:07d}.png'),
                                 ctx.step)
    self.writers.image(ctx.step, 'samples', pic)
    if exp.evaluator:
      num = exp.config.eval_num
      labels = exp.classes_of(exp.class_labels(num))  # for class_acc
      quick = exp.evaluator.quick(exp.eval_samples(ctx.state), labels=labels)
      metrics.update({f'eval/{k}': v for k, v in quick.items()})
      metrics['eval/num'] = num
      check_health(ctx.health, self.ckpt, ctx.step)
      check_state_finite(ctx.state, self.ckpt, ctx.step)
      if self.best.save(ctx.step, ctx.state, quick['fd']):
        self.say(f'{exp.config.name}: step {ctx.step} has the best FD so far ({quick["fd"]:.3f}); '
                 f'saved to {self.best.directory}')
    if metrics:
      self.writers.scalars(ctx.step, metrics)


class SaveCheckpoint:
  """At the checkpoint cadence, at the last step and on a stop signal: checks health, saves."""

  def __init__(self, ckpt):
    self.ckpt = ckpt

  def __call__(self, ctx: StepContext):
    if self.ckpt.should_save(ctx.step) or ctx.last or ctx.stop:
      check_health(ctx.health, self.ckpt, ctx.step)
      check_state_finite(ctx.state, self.ckpt, ctx.step)
      self.ckpt.save(ctx.step, ctx.state)


class StopSignals:
  """Turns SIGTERM (cluster preemption) and SIGINT into a flag the loop checks after each step."""

  def __init__(self):
    self.received = None
    self._old = {}

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._old[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.received = signal.Signals(signum).name

  def agreed(self, step: int, every: int):
    """The signal to stop on at ``step``, the same on every process, or None.

    One process stops at once. Several processes must stop at the same step (the checkpoint
    save is collective), so they compare their flags every ``every`` steps, a host
    all-gather, and all stop when any of them got a signal.
    """
    if jax.process_count() == 1:
      return self.received
    if step % every:
      return None
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    got = multihost_utils.process_allgather(np.int32(self.received is not None))
    return (self.received or 'a signal on another process') if np.any(got) else None

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def say_on_main(msg: str):
  """Prints ``msg`` on process 0 only."""
  if parallel.is_main_process():
    print(msg, flush=True)


__all__ = ['HEALTH_KEYS', 'LogMetrics', 'NullWriters', 'SamplesAndEval', 'SaveCheckpoint',
           'StepContext', 'StopSignals', 'Writers', 'check_health', 'check_state_finite',
           'new_health', 'say_on_main',
           'update_health', 'write_samples']
