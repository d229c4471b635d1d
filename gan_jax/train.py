"""The training loop: ``train_and_evaluate(config, workdir)``.

The only module that owns a loop. Each train step is one compiled call that draws its real
batches from the on-device dataset and its latents from a key derived from ``(seed, step)``,
so a resumed run repeats the batches of an uninterrupted one exactly. Metrics are fetched from
the device only every ``log_every`` steps, so dispatch runs ahead of the host.
"""

import functools
import json
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Dict, Tuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm import tqdm

from gan_jax import checkpointing, config_base, data, images, losses, models, parallel, penalties, steps
from gan_jax.errors import ConfigError, TrainingDiverged, UserError
from gan_jax.evaluation.modes import mode_metrics
from gan_jax.state import SCHEDULES, GANState, create_state, make_optimizer

# fold_in tags that separate the random streams derived from the seed.
_INIT, _TRAIN, _GRID, _SAMPLE, _EVAL = 0, 1, 2, 3, 4
# Metrics watched for NaN/Inf on the device.
HEALTH_KEYS = ('loss_D', 'loss_G', 'grad_norm_D', 'grad_norm_G')


def validate_config(config: ml_collections.ConfigDict):
  """Raises ConfigError (one line naming the value and what is valid) for bad settings."""
  def check(ok, msg):
    if not ok:
      raise ConfigError(msg)
  for key in ('num_steps', 'batch_size', 'n_critic'):
    v = config[key]
    check(isinstance(v, int) and v >= 1, f'config.{key}={v!r} must be an integer >= 1')
  ev = config.get('eval_num', 0)
  check(isinstance(ev, int) and (ev == 0 or ev >= 2),
        f'config.eval_num={ev!r} must be 0 (off) or an integer >= 2')
  for key in ('log_every', 'eval_every', 'checkpoint_every', 'keep_checkpoints', 'num_grid'):
    v = config[key]
    check(isinstance(v, int) and v >= 1, f'config.{key}={v!r} must be an integer >= 1')
  check(0.0 <= config.ema_decay < 1.0,
        f'config.ema_decay={config.ema_decay!r} must lie in [0, 1) (0 turns EMA off)')
  nd = config.get('num_devices', 0)
  check(isinstance(nd, int) and nd >= 0,
        f'config.num_devices={nd!r} must be an integer >= 0 (0 = all devices)')
  check(isinstance(config.seed, int) and config.seed >= 0,
        f'config.seed={config.seed!r} must be an integer >= 0')
  check(config.model.latent_dim >= 1,
        f'config.model.latent_dim={config.model.latent_dim!r} must be >= 1')
  for net in ('g', 'd'):
    lr = config.optim.get(f'{net}_lr')
    check(isinstance(lr, (int, float)) and lr > 0,
          f'config.optim.{net}_lr={lr!r} must be a learning rate > 0')
  for b in ('b1', 'b2'):
    v = config.optim.get(b)
    check(isinstance(v, (int, float)) and 0 <= v < 1,
          f'config.optim.{b}={v!r} must lie in [0, 1) (an Adam beta)')
  losses.get_loss(config.loss)
  penalties.get_penalty(config.penalty)
  check(isinstance(config.penalty_every, int) and config.penalty_every >= 1,
        f'config.penalty_every={config.penalty_every!r} must be an integer >= 1')
  check(config.penalty_weight >= 0, f'config.penalty_weight={config.penalty_weight!r} must be >= 0')
  check(config.weight_clip >= 0, f'config.weight_clip={config.weight_clip!r} must be >= 0 (0 = off)')
  check(0 <= config.label_smoothing < 0.5,
        f'config.label_smoothing={config.label_smoothing!r} must lie in [0, 0.5)')
  check(config.label_smoothing == 0 or config.loss in ('minimax', 'ns'),
        f'config.label_smoothing={config.label_smoothing!r} applies to the BCE objectives '
        f'minimax and ns, not config.loss={config.loss!r}')
  check(not config.get('share_g_forward', False) or config.n_critic == 1,
        f'config.share_g_forward=True needs config.n_critic=1 (got {config.n_critic}): with '
        'several D steps there is no single fake batch to share; add '
        '--config.share_g_forward=False')
  check(config.instance_noise >= 0,
        f'config.instance_noise={config.instance_noise!r} must be >= 0 (0 = off)')
  check(config.optim.get('schedule', 'constant') in SCHEDULES,
        f'config.optim.schedule={config.optim.get("schedule")!r} is not a schedule; valid: '
        f'{", ".join(SCHEDULES)}')
  models.compute_dtype(config.get('compute_dtype', 'float32'))
  if config.model.name not in models.MODELS:
    models.build_models(config.model, (28, 28, 1))  # raises the listing error


def step_config(config, num_classes: int = 0) -> steps.StepConfig:
  """The static step options. An objective implies its regulariser when none is chosen:
  'wgan_gp' the gradient penalty, 'wgan' weight clipping at 0.01. ``num_classes`` > 0 makes the
  step class-conditional (``Experiment.num_classes``)."""
  penalty = config.penalty if config.penalty != 'none' else losses.PENALTY_FOR_LOSS.get(
      config.loss, 'none')
  clip = config.weight_clip or (0.01 if config.loss == 'wgan' else 0.0)
  return steps.StepConfig(
      loss=config.loss, n_critic=config.n_critic, latent_dim=config.model.latent_dim,
      ema_decay=config.ema_decay, penalty=penalty, penalty_weight=config.penalty_weight,
      penalty_every=config.penalty_every, weight_clip=clip,
      label_smoothing=config.label_smoothing, instance_noise=config.instance_noise,
      instance_noise_steps=config.instance_noise_steps,
      feature_matching=config.feature_matching,
      share_g_forward=config.get('share_g_forward', False), num_classes=num_classes)


class Experiment:
  """Models, data, mesh and compiled functions for a config: everything but the loop.

  Also what ``gan_jax.sample`` uses to rebuild a run from its workdir.

  Attributes:
    num_classes: the classes G and D condition on; 0 for an unconditional model.
  """

  def __init__(self, config: ml_collections.ConfigDict, data_shape=None, num_classes=None):
    """Loads the data unless ``data_shape`` is given (sampling needs only the shape, and for a
    class-conditional model ``num_classes``, the data's: ``restore_run`` reads both from the
    run's data_info.json)."""
    validate_config(config)
    self.config = config
    self.mesh = parallel.make_mesh(config.get('num_devices', 0))
    parallel.check_batch_size(config.batch_size, self.mesh)
    self.source = data.load_source(config.data) if data_shape is None else None
    self.data_shape = tuple(self.source.info['shape'] if data_shape is None else data_shape)
    if num_classes is None:
      num_classes = self.source.info.get('num_classes') if self.source else None
    if config.model.name in models.CONDITIONAL_MODELS and not num_classes:
      if self.source is None:
        raise ConfigError(f'config.model.name={config.model.name!r} is class-conditional: '
                          'Experiment(config, data_shape=...) needs num_classes too (restore_run '
                          "reads it from the run's data_info.json)")
      plain = ', '.join(sorted(set(models.MODELS) - models.CONDITIONAL_MODELS))
      raise ConfigError(
          f'config.model.name={config.model.name!r} is class-conditional but '
          f'config.data.name={config.data.name!r} has no class labels; use a labelled dataset '
          f'or an unconditional model ({plain})')
    self.g_model, self.d_model = models.build_models(
        config.model, self.data_shape, dtype=config.get('compute_dtype', 'float32'),
        num_classes=num_classes or 0)
    self.num_classes = int(getattr(self.g_model, 'num_classes', 0) or 0)
    if self.num_classes and self.source is not None and self.num_classes != num_classes:
      # e.g. an explicit config.model.num_classes: labels outside [0, K) would be clamped.
      raise ConfigError(f'the model conditions on {self.num_classes} classes but '
                        f'config.data.name={config.data.name!r} has {num_classes or "no"} '
                        'class labels; set config.model.num_classes to match (or leave it unset)')
    self.cfg = step_config(config, self.num_classes)
    self.root_key = jax.random.key(config.seed)
    self._replicated = parallel.replicated(self.mesh)

  def _init(self, key):
    c = self.config
    return create_state(self.g_model, self.d_model, make_optimizer(c.optim, 'g', c.num_steps),
                        make_optimizer(c.optim, 'd', c.num_steps * c.n_critic),
                        c.model.latent_dim, self.data_shape, key, ema=c.ema_decay > 0)

  def init_state(self) -> GANState:
    init = jax.jit(self._init, out_shardings=self._replicated)
    return init(jax.random.fold_in(self.root_key, _INIT))

  def abstract_state(self):
    shapes = jax.eval_shape(self._init, jax.random.fold_in(self.root_key, _INIT))
    return checkpointing.abstract_like(shapes, self._replicated)

  def device_arrays(self):
    return jax.device_put(self.source.arrays, self._replicated)

  @functools.cached_property
  def step_fn(self):
    """Compiled ``(state, arrays, health) -> (state, metrics, health)``.

    Batches are drawn inside from ``(seed, step)``. ``health`` is an int32 ``[2]`` device array,
    ``[first non-finite step or -1, bitmask over HEALTH_KEYS]``: a cheap on-device NaN/Inf
    watch that the host reads only at log and checkpoint steps.
    """
    cfg, c, draw = self.cfg, self.config, self.source.draw
    train_key = jax.random.fold_in(self.root_key, _TRAIN)
    batch_spec = parallel.batch_sharding(self.mesh, batch_axis=1)

    def fused(state, arrays, health):
      key = jax.random.fold_in(train_key, state.step)
      data_key, step_key = jax.random.split(key)
      batch = draw(arrays, data_key, cfg.n_critic * c.batch_size)
      reals = batch['image'].reshape((cfg.n_critic, c.batch_size) + self.data_shape)
      reals = jax.lax.with_sharding_constraint(reals, batch_spec)
      labels = None
      if cfg.num_classes:
        labels = batch['label'].reshape((cfg.n_critic, c.batch_size))
        labels = jax.lax.with_sharding_constraint(labels, batch_spec)
      state, metrics = steps.train_step(state, reals, step_key, cfg, labels=labels)
      bad = jnp.stack([~jnp.isfinite(metrics[k]) for k in HEALTH_KEYS])
      mask = jnp.sum(bad.astype(jnp.int32) << jnp.arange(len(HEALTH_KEYS)))
      first = (health[0] < 0) & (mask > 0)
      health = jnp.where(first, jnp.stack([state.step, mask]), health)
      return state, metrics, health

    return jax.jit(fused, donate_argnums=(0, 2),
                   out_shardings=(self._replicated, self._replicated, self._replicated))

  def new_health(self):
    return jax.device_put(jnp.array([-1, 0], jnp.int32), self._replicated)

  @functools.cached_property
  def evaluator(self):
    """FD and score against the test split, for image data when ``config.eval_num > 0``.

    Raises UserError (before anything is written) when the dataset has no evaluation
    classifier, naming the command that makes one or ``eval_num=0``: never a silent skip.
    """
    num = self.config.get('eval_num', 0)
    if not num or len(self.data_shape) == 1:
      return None
    from gan_jax.evaluation import suite
    try:
      return suite.Evaluator.for_dataset(self.config.data.name, num, self.config.data)
    except UserError as e:
      raise UserError(f'{e} (or set --config.eval_num=0 to train without FD)') from None

  def eval_samples(self, state):
    """``eval_num`` samples from fixed latents (the same at every eval step); for a conditional
    model made for ``class_labels(eval_num)``."""
    return self.sample(state, self.config.eval_num, key=jax.random.fold_in(self.root_key, _EVAL))

  @functools.cached_property
  def _generate_jit(self):
    return jax.jit(steps.generate, static_argnames=('train', 'use_ema'))

  @property
  def generate_fn(self):
    """``generate_fn(state, z, train=False, use_ema=True, labels=None)``: G(z [, labels]).

    ``labels`` (int ``[B]`` in ``[0, num_classes)``) are required for a conditional model and
    refused for an unconditional one, with a UserError naming the problem.
    """
    return self._generate

  def _generate(self, state, z, train: bool = False, use_ema: bool = True, labels=None):
    if self.num_classes:
      if labels is None:
        raise UserError(f'this run is class-conditional ({self.num_classes} classes): pass '
                        f'labels=int [{z.shape[0]}] in [0, {self.num_classes})')
      host = np.asarray(labels)
      if host.shape != (z.shape[0],) or not np.issubdtype(host.dtype, np.integer):
        raise UserError(f'labels of shape {host.shape} and dtype {host.dtype}: expected one '
                        f'integer per latent, shape ({z.shape[0]},)')
      if host.size and (host.min() < 0 or host.max() >= self.num_classes):
        raise UserError(f'labels must lie in [0, {self.num_classes}); got values '
                        f'{int(host.min())}..{int(host.max())}')
      labels = jnp.asarray(host, jnp.int32)
    elif labels is not None:
      raise UserError('this run is unconditional (config.model.name='
                      f'{self.config.model.name!r}): it takes no labels')
    return self._generate_jit(state, z, train=train, use_ema=use_ema, labels=labels)

  def class_labels(self, n: int):
    """Balanced labels for ``n`` samples of a conditional model: ``0, 1, ..., K-1, 0, 1, ...``
    (int32 ``[n]``); None for an unconditional model. What ``sample`` uses by default, so every
    class gets ``n / K`` samples (up to one) in evaluations."""
    return np.arange(n, dtype=np.int32) % self.num_classes if self.num_classes else None

  def grid_latents(self, n):
    return jax.random.normal(jax.random.fold_in(self.root_key, _GRID), (n, self.config.model.latent_dim))

  def grid_inputs(self, n: int):
    """(latents, labels, columns) of the fixed-latent training picture of about ``n`` samples.

    Unconditional: ``n`` latents, labels None, a square-ish grid. Conditional: one row per
    class and ``max(1, n // K)`` columns; column j holds the same latent in every row, so a
    row shows one class and a column one "style".
    """
    if not self.num_classes:
      return self.grid_latents(n), None, 0
    k = self.num_classes
    cols = max(1, n // k)
    z = jnp.tile(self.grid_latents(cols), (k, 1))
    return z, np.repeat(np.arange(k, dtype=np.int32), cols), cols

  def sample(self, state, n: int, key=None, use_ema=True, chunk: int = 500,
             labels=None) -> np.ndarray:
    """``n`` generated samples (numpy float32 in [-1, 1] for images), eval-mode G.

    A conditional model makes sample i for ``labels[i]`` (int ``[n]``); by default for
    ``class_labels(n)``, every class equally often.
    """
    key = jax.random.fold_in(self.root_key, _SAMPLE) if key is None else key
    if self.num_classes and labels is None:
      labels = self.class_labels(n)
    if labels is not None:
      labels = np.asarray(labels)
      if labels.shape != (n,):
        raise UserError(f'labels have shape {labels.shape}; expected ({n},), one per sample')
    out = []
    for i, start in enumerate(range(0, n, chunk)):
      z = jax.random.normal(jax.random.fold_in(key, i), (min(chunk, n - start), self.config.model.latent_dim))
      y = None if labels is None else labels[start:start + z.shape[0]]
      out.append(np.asarray(self.generate_fn(state, z, use_ema=use_ema, labels=y)))
    return np.concatenate(out)


def _flat(cfg: Dict[str, Any], prefix='') -> Dict[str, Any]:
  out = {}
  for k, v in cfg.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _normalise(cfg: Dict[str, Any]):
  return json.loads(json.dumps(cfg, default=str))


# Keys that may change between launches of one run: the topology (a run saved on 8 devices
# resumes on 1, and the reverse) and the switch itself.
RESUMABLE_KEYS = frozenset({'allow_config_change', 'num_devices'})


def check_config_matches(config, path: str) -> bool:
  """Compares ``config`` with the run's ``config.json`` (read-only). Returns whether the file
  must be (re)written. Raises ConfigError naming the differing keys unless
  ``config.allow_config_change``; ``RESUMABLE_KEYS`` may differ freely."""
  new = _normalise(config.to_dict())
  if not os.path.exists(path):
    return True
  with open(path) as f:
    old = json.load(f)
  a, b = _flat(old), _flat(new)
  # A key that a later version added to the base config, at its default value, is no change:
  # runs from before it resume (e.g. model.upconv, added with its only earlier behaviour).
  defaults = _flat(_normalise(config_base.base_config().to_dict()))
  added = [k for k in set(b) - set(a) if k in defaults and b[k] == defaults[k]]
  for k in added:
    a[k] = b[k]
  diff = sorted(k for k in set(a) | set(b)
                if a.get(k, '<unset>') != b.get(k, '<unset>'))
  strict = [k for k in diff if k not in RESUMABLE_KEYS]
  if strict and not config.get('allow_config_change', False):
    shown = ', '.join(f'{k}: {a.get(k, "<unset>")!r} -> {b.get(k, "<unset>")!r}'
                      for k in strict[:6])
    raise ConfigError(
        f'the config differs from {path} in {len(strict)} key(s) ({shown}); use a new --workdir '
        'or pass --config.allow_config_change=True to resume anyway')
  return bool(diff or added)


def _write_json(path, obj):
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(_normalise(obj), f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def _merge(config: ml_collections.ConfigDict, values: Dict[str, Any]):
  for k, v in values.items():
    if isinstance(v, dict):
      if k not in config:
        config[k] = ml_collections.ConfigDict()
      _merge(config[k], v)
    else:
      config[k] = tuple(v) if isinstance(v, list) else v


def load_run(workdir: str) -> Tuple[ml_collections.ConfigDict, tuple]:
  """(config, data shape) of the run in ``workdir``, for sampling and evaluation."""
  cfg_path = os.path.join(workdir, 'config.json')
  info_path = os.path.join(workdir, 'data_info.json')
  for p in (cfg_path, info_path):
    if not os.path.exists(p):
      raise UserError(f'--workdir={workdir} holds no run ({p} is missing); pass the workdir of a '
                      'run started with launch.py')
  with open(cfg_path) as f:
    saved = json.load(f)
  # Defaults first, so runs saved before a key existed still load (with that key's default).
  config = config_base.base_config()
  _merge(config, saved)
  for key in ('g_hidden', 'd_hidden'):
    if key in config.model:
      config.model[key] = tuple(config.model[key])
  with open(info_path) as f:
    shape = tuple(json.load(f)['shape'])
  return config, shape


def restore_run(workdir, step=None):
  """(config, data shape, Experiment, state at ``step`` or the latest) of a launch.py run."""
  if not workdir:
    raise UserError('--workdir is required: the run directory written by launch.py')
  config, shape = load_run(workdir)
  with open(os.path.join(workdir, 'data_info.json')) as f:
    num_classes = json.load(f).get('num_classes')
  ckpt = checkpointing.Checkpoints(os.path.join(workdir, 'checkpoints'), create=False)
  steps_saved = ckpt.all_steps()
  if not steps_saved:
    raise UserError(f'--workdir={workdir} has no checkpoint under {workdir}/checkpoints; '
                    'train it first with launch.py')
  if step is not None and step not in steps_saved:
    raise UserError(f'--step={step} has no checkpoint; saved steps: {steps_saved}')
  exp = Experiment(config, data_shape=shape, num_classes=num_classes)
  state = ckpt.restore(exp.abstract_state(), step)
  ckpt.close()
  return config, shape, exp, state


def _check_workdir(workdir: str):
  """Refuses a workdir that is a file or cannot be written, before anything is written."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir={workdir} is a file, not a directory; pass a directory path')
  parent = workdir
  while not os.path.exists(parent):
    parent = os.path.dirname(os.path.abspath(parent))
  if not os.access(parent, os.W_OK) or not os.path.isdir(parent):
    raise UserError(f'--workdir={workdir} is not writable ({parent} does not allow writing); '
                    'pass a writable directory')


def _make_workdir(workdir: str):
  try:
    os.makedirs(os.path.join(workdir, 'samples'), exist_ok=True)
  except OSError as e:
    raise UserError(f'--workdir={workdir} cannot be created ({e.strerror}); pass a writable '
                    'directory') from None


class WorkdirLock:
  """One workdir, one job: ``<workdir>/lock`` holds the owner's pid.

  A live owner makes a second launch fail with its pid; a lock left by a dead process (kill -9,
  a crashed node) is taken over with a warning.
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, 'lock')
    self.held = False

  @staticmethod
  def _alive(pid: int) -> bool:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    except PermissionError:
      return True
    return True

  def acquire(self):
    me = os.getpid()
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        pid = int(open(self.path).read().split()[0])
      except (OSError, ValueError, IndexError):
        pid = -1
      if pid > 0 and pid != me and self._alive(pid):
        raise UserError(f'{os.path.dirname(self.path)} is in use by a live job (pid {pid}); wait '
                        'for it to finish or pass another --workdir') from None
      print(f'warning: taking over the stale lock {self.path} of pid {pid}, which is not running',
            file=sys.stderr, flush=True)
      fd = os.open(self.path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    with os.fdopen(fd, 'w') as f:
      f.write(f'{me} {socket.gethostname()}\n')
    self.held = True

  def release(self):
    if self.held:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
      self.held = False


class _NullWriters:
  """What processes other than 0 write: nothing."""

  def scalars(self, step, metrics):
    pass

  def image(self, step, tag, array):
    pass

  def close(self):
    pass


class _Writers(_NullWriters):
  """metrics.jsonl + TensorBoard event files (tensorboardX: no TensorFlow needed)."""

  def __init__(self, workdir):
    from tensorboardX import SummaryWriter
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


def write_samples(exp: Experiment, state, path: str, step: int):
  """The fixed-latent picture at ``step``: an image grid, or a 2-D scatter plot vs real data.

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


class _StopSignals:
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
    from jax.experimental import multihost_utils
    got = multihost_utils.process_allgather(np.int32(self.received is not None))
    return (self.received or 'a signal on another process') if np.any(got) else None

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def _check_health(health, ckpt, step_hint):
  first, mask = (int(v) for v in jax.device_get(health))
  if first < 0:
    return
  which = [k for i, k in enumerate(HEALTH_KEYS) if mask >> i & 1]
  good = [s for s in ckpt.all_steps() if s < first]
  last = (f'step {good[-1]} in {ckpt.directory}' if good else 'none')
  raise TrainingDiverged(
      f'non-finite {", ".join(which)} at step {first} (noticed at step {step_hint}); stopped '
      f'without saving the poisoned state; last good checkpoint: {last}')


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> GANState:
  """Trains (or resumes) the run in ``workdir``; returns the final state.

  Everything that can be wrong with the input (config values, workdir, data) is checked before
  anything is written. SIGTERM saves a checkpoint at the current step and returns.
  """
  validate_config(config)
  _check_workdir(workdir)
  config_path = os.path.join(workdir, 'config.json')
  write_config = check_config_matches(config, config_path)
  exp = Experiment(config)  # loads and validates the data, builds the models
  exp.evaluator  # loads the classifier and the test split now: its errors come before any write
  main = parallel.is_main_process()  # only process 0 writes files besides checkpoints
  if main:
    _make_workdir(workdir)
  lock = WorkdirLock(workdir)
  if main:
    lock.acquire()
  try:
    if write_config and main:
      _write_json(config_path, config.to_dict())
    if main:
      _write_json(os.path.join(workdir, 'data_info.json'),
                  {k: v for k, v in exp.source.info.items()
                   if k in ('name', 'shape', 'num_classes', 'num_examples', 'source')})
    with _StopSignals() as signals:
      return _train(exp, workdir, signals)
  finally:
    lock.release()


def _train(exp: Experiment, workdir: str, signals: '_StopSignals') -> GANState:
  config = exp.config
  ckpt = checkpointing.Checkpoints(os.path.join(workdir, 'checkpoints'),
                                   keep=config.keep_checkpoints, every=config.checkpoint_every)
  main = parallel.is_main_process()
  say = (lambda msg: print(msg, flush=True)) if main else (lambda msg: None)
  start, state = ckpt.restore_latest_good(exp.abstract_state())
  if start is None:
    state, start = exp.init_state(), 0
  else:
    say(f'Resuming {config.name} from step {start} ({workdir}/checkpoints)')
  final_png = os.path.join(workdir, 'samples', 'final.png')
  if start >= config.num_steps:
    write_samples(exp, state, final_png, start)  # all processes take part: no file-system test
    say(f'{config.name}: run already finished at step {start} of {config.num_steps}; '
        f'nothing to do ({workdir})')
    ckpt.close()
    return state

  writers = _Writers(workdir) if main else _NullWriters()
  best = (checkpointing.BestCheckpoint(os.path.join(workdir, 'checkpoints_best'), 'fd')
          if exp.evaluator else None)
  arrays, health = exp.device_arrays(), exp.new_health()
  t0 = time.time()
  state, metrics, health = exp.step_fn(state, arrays, health)  # compiles
  jax.block_until_ready(metrics)
  compile_s = time.time() - t0
  step = start + 1
  bar = tqdm(total=config.num_steps, initial=step, desc=config.name, unit='step',
             dynamic_ncols=True, mininterval=1.0, disable=not main)
  t_log, s_log = time.time(), step
  stopped = None
  try:
    while True:
      last = step >= config.num_steps
      if step % config.log_every == 0 or last:
        _check_health(health, ckpt, step)
        m = {k: float(v) for k, v in jax.device_get(metrics).items()}
        now = time.time()
        m['steps_per_s'] = (step - s_log) / max(now - t_log, 1e-9)
        t_log, s_log = now, step
        writers.scalars(step, m)
        bar.set_postfix(loss_D=f'{m["loss_D"]:.3f}', loss_G=f'{m["loss_G"]:.3f}', refresh=False)
      if step % config.eval_every == 0 or last:
        pic, eval_metrics = write_samples(
            exp, state, os.path.join(workdir, 'samples', f'step_{step:07d}.png'), step)
        writers.image(step, 'samples', pic)
        if exp.evaluator:
          quick = exp.evaluator.quick(exp.eval_samples(state),
                                      labels=exp.class_labels(config.eval_num))
          eval_metrics.update({f'eval/{k}': v for k, v in quick.items()})
          eval_metrics['eval/num'] = config.eval_num
          _check_health(health, ckpt, step)
          if best.save(step, state, quick['fd']):
            say(f'{config.name}: step {step} has the best FD so far ({quick["fd"]:.3f}); saved to '
                f'{best.directory}')
        if eval_metrics:
          writers.scalars(step, eval_metrics)
      stop = signals.agreed(step, config.log_every)
      if ckpt.should_save(step) or last or stop:
        _check_health(health, ckpt, step)
        ckpt.save(step, state)
      if stop:
        stopped = stop
        break
      if last:
        break
      state, metrics, health = exp.step_fn(state, arrays, health)
      step += 1
      bar.update(1)
  finally:
    bar.close()
    writers.close()
    ckpt.close()
    if best:
      best.close()
  if stopped:
    say(f'{config.name}: received {stopped} at step {step}; saved a checkpoint at step {step} '
        f'and stopped. Relaunch the same command to continue.')
    return state
  write_samples(exp, state, final_png, step)
  say(f'{config.name}: finished {config.num_steps} steps in {time.time() - t0:.1f}s '
      f'(compile {compile_s:.1f}s); samples in {final_png}')
  return state
