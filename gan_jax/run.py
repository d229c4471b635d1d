"""A run, built from its config: ``Experiment`` (data, models, mesh, compiled step, sampling)
and ``restore_run`` (the same from a workdir and a checkpoint).

What a notebook, ``gan_jax.sample``, ``gan_jax.evaluate`` or a study needs to rebuild a run and
use it, without the training loop (``gan_jax.train``).
"""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import (augment, checkpointing, config_base, data, hooks, losses, models, parallel,
                     steps, workdir)
from gan_jax.data import clusters, stream
from gan_jax.errors import ConfigError, DataError, UserError
from gan_jax.state import GANState, create_state, make_optimizer

def step_config(config, num_classes: int = 0, label_probs=()) -> steps.StepConfig:
  """The static step options. An objective implies its regulariser when none is chosen:
  'wgan_gp' the gradient penalty, 'wgan' weight clipping at 0.01. ``num_classes`` > 0 makes the
  step class-conditional (``Experiment.num_classes``), its fakes' labels drawn from
  ``label_probs`` (() = uniform)."""
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
      augment=augment.parse(config.get('augment', '')),
      augment_strength=float(config.get('augment_strength', 1.0)),
      mode_seeking=float(config.get('mode_seeking', 0.0)),
      share_g_forward=config.get('share_g_forward', False), num_classes=num_classes,
      label_probs=tuple(float(p) for p in label_probs))


class Experiment:
  """Models, data, mesh and compiled functions for a config: everything but the loop.

  Also what ``gan_jax.sample`` uses to rebuild a run from its workdir.

  Attributes:
    num_classes: the classes G and D condition on; 0 for an unconditional model.
    label_probs: () when the fakes' classes are drawn uniformly; with ``config.data.clusters``
      (or ``clusters_per_class``) the k-means clusters' shares, which fakes are drawn with, in
      training and sampling.
    cluster_classes: with ``config.data.clusters_per_class``, the data class of each cluster;
      else ().
  """

  def __init__(self, config: ml_collections.ConfigDict, data_shape=None, num_classes=None,
               label_probs=(), cluster_classes=()):
    """Loads the data unless ``data_shape`` is given (sampling needs only the shape, and for a
    class-conditional model ``num_classes``, ``label_probs`` and ``cluster_classes``, the
    data's: ``restore_run`` reads them from the run's data_info.json)."""
    config_base.validate_config(config)
    self.config = config
    self.mesh = parallel.make_mesh(config.get('num_devices', 0))
    parallel.check_batch_size(config.batch_size, self.mesh)
    self.source, self.records = load_data(config) if data_shape is None else (None, None)
    if self.source is not None and config.data.get('clusters', 0):
      self.source = clusters.relabel(self.source, config.data.clusters, config.seed)
    if self.source is not None and config.data.get('clusters_per_class', 0):
      self.source = clusters.split_classes(self.source, config.data.clusters_per_class,
                                           config.seed)
    self.data_shape = tuple(self.source.info['shape'] if data_shape is None else data_shape)
    if num_classes is None:
      num_classes = self.source.info.get('num_classes') if self.source else None
    if self.source is not None:
      label_probs = self.source.info.get('label_probs', ())
      cluster_classes = self.source.info.get('cluster_classes', ())
    self.label_probs = tuple(float(p) for p in (label_probs or ()))
    self.cluster_classes = tuple(int(c) for c in (cluster_classes or ()))
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
    self.cfg = step_config(config, self.num_classes, self.label_probs)
    self.root_key = jax.random.key(config.seed)
    self._replicated = parallel.replicated(self.mesh)

  def create_state(self, key) -> GANState:
    """A fresh GANState from ``key`` (pure: jit, vmap or ``jax.eval_shape`` it). A run's own is
    ``create_state(fold_in(key(seed), steps.RNG_INIT))``, which ``init_state`` places."""
    c = self.config
    return create_state(self.g_model, self.d_model, make_optimizer(c.optim, 'g', c.num_steps),
                        make_optimizer(c.optim, 'd', c.num_steps * c.n_critic),
                        c.model.latent_dim, self.data_shape, key, ema=c.ema_decay > 0)

  def init_state(self) -> GANState:
    init = jax.jit(self.create_state, out_shardings=self._replicated)
    return init(jax.random.fold_in(self.root_key, steps.RNG_INIT))

  def abstract_state(self):
    shapes = jax.eval_shape(self.create_state, jax.random.fold_in(self.root_key, steps.RNG_INIT))
    return checkpointing.abstract_like(shapes, self._replicated)

  @property
  def streams(self) -> bool:
    """Whether the data streams through ``gan_jax.data.stream`` (else it lives on the device)."""
    return self.records is not None

  def device_arrays(self):
    """The device-resident dataset (``None`` for a streamed run: see ``stream_feed``)."""
    if self.streams:
      return None
    return jax.device_put(self.source.arrays, self._replicated)

  def stream_feed(self):
    """A streamed run's ``stream.StreamFeed`` (global batches, checkpointable position); None
    when the data lives on the device."""
    if not self.streams:
      return None
    d = self.config.data
    return stream.StreamFeed(self.records, self.mesh, seed=self.config.seed,
                             batch_size=self.config.batch_size, n_critic=self.config.n_critic,
                             flip=d.get('flip', False), skip_bad_files=d.get('skip_bad_files',
                                                                              False),
                             workers=d.get('workers', 2), prefetch=d.get('prefetch', 8))

  def data_spec(self):
    """Abstract shapes of what ``step_fn`` takes as data: the arrays, or one step's batches."""
    if not self.streams:
      return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                         sharding=self._replicated),
                          self.source.arrays)
    n, b = self.config.n_critic, self.config.batch_size
    sharding = parallel.batch_sharding(self.mesh, batch_axis=1)
    return {'image': jax.ShapeDtypeStruct((n, b) + self.data_shape, np.uint8, sharding=sharding),
            'label': jax.ShapeDtypeStruct((n, b), np.int32, sharding=sharding)}

  def train_step(self, state: GANState, data_in, train_key):
    """One train step (pure, uncompiled): ``steps.train_step_on_data`` on batches drawn from
    the device-resident dataset ``data_in`` (``device_arrays()``), or, for a streamed run,
    ``steps.train_step_on_batch`` on one step's batches (``stream_feed().next()``). A run's
    ``train_key`` is ``fold_in(key(seed), steps.RNG_TRAIN)``."""
    sharding = parallel.batch_sharding(self.mesh, batch_axis=1)
    if self.streams:
      return steps.train_step_on_batch(state, data_in, train_key, self.cfg,
                                       batch_sharding=sharding)
    return steps.train_step_on_data(
        state, data_in, train_key, self.cfg, draw=self.source.draw,
        batch_size=self.config.batch_size, data_shape=self.data_shape, batch_sharding=sharding)

  @functools.cached_property
  def step_fn(self):
    """Compiled ``(state, data, health) -> (state, metrics, health)``: ``train_step`` with
    this run's key and ``hooks.update_health``, an on-device NaN/Inf watch of the metrics
    (``health`` from ``new_health()``) that the host reads only at log and checkpoint steps.
    """
    train_key = jax.random.fold_in(self.root_key, steps.RNG_TRAIN)

    def step_and_watch(state, data_in, health):
      state, metrics = self.train_step(state, data_in, train_key)
      return state, metrics, hooks.update_health(health, metrics, state.step)

    return jax.jit(step_and_watch, donate_argnums=(0, 2),
                   out_shardings=(self._replicated, self._replicated, self._replicated))

  def new_health(self):
    return jax.device_put(hooks.new_health(), self._replicated)

  @functools.cached_property
  def evaluator(self):
    """FD against real images at every eval, for image data when ``config.eval_num > 0``.

    28x28 grayscale data (the MNIST family): FD in the features of the dataset's classifier,
    and score, against its test split; a UserError (before anything is written) when the
    dataset has no classifier, naming the command that makes one or ``eval_num=0``: never a
    silent skip. Other images (RGB, or other sizes): the Inception FID (clean-fid resizing,
    ``gan_jax.evaluation.inception_eval``) against ``eval_num`` training images, when the
    Inception weights file is present; without it the run says so once and has no FID.
    """
    num = self.config.get('eval_num', 0)
    if not num or len(self.data_shape) == 1:
      return None
    if tuple(self.data_shape) != (28, 28, 1):
      from gan_jax.evaluation import inception_eval  # pylint: disable=g-import-not-at-top
      return inception_eval.InceptionEvaluator.for_rgb_data(
          lambda: self.real_images(num), say=hooks.say_on_main)
    from gan_jax.evaluation import suite  # pylint: disable=g-import-not-at-top
    try:
      return suite.Evaluator.for_dataset(self.config.data.name, num, self.config.data)
    except UserError as e:
      raise UserError(f'{e} (or set --config.eval_num=0 to train without FD)') from None

  def real_images(self, n: int) -> np.ndarray:
    """``n`` training images (fewer if the data has fewer), uint8 ``[n, H, W, C]``, the same for
    a seed: the Inception FID's real reference (``pick_real_images``)."""
    if self.source is None:
      raise UserError('this Experiment was built without its data (data_shape=...)')
    return pick_real_images(self.config, self.source, self.records, n)

  def eval_samples(self, state):
    """``eval_num`` samples from fixed latents (the same at every eval step); for a conditional
    model made for ``class_labels(eval_num)``."""
    return self.sample(state, self.config.eval_num, key=jax.random.fold_in(self.root_key, steps.RNG_EVAL))

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

  @property
  def labels_are_classes(self) -> bool:
    """Whether the labels G is given are the data's classes (not k-means clusters)."""
    return bool(self.num_classes) and not self.label_probs

  def classes_of(self, labels):
    """The data classes of samples made for ``labels`` (what ``class_acc`` checks): the labels
    themselves, or with ``config.data.clusters_per_class`` their clusters' classes; None for
    an unconditional run or label-free clusters (``config.data.clusters``)."""
    if labels is None or not self.num_classes:
      return None
    if self.cluster_classes:
      return np.asarray(self.cluster_classes, np.int32)[np.asarray(labels)]
    return labels if self.labels_are_classes else None

  def class_labels(self, n: int):
    """Labels for ``n`` samples of a conditional model (int32 ``[n]``); None for an
    unconditional model. What ``sample`` uses by default. Classes: balanced, ``0, 1, ..., K-1,
    0, 1, ...``, so every class gets ``n / K`` samples (up to one). Clusters: systematic
    sampling of the shares ``label_probs``, sample i gets the cluster whose cumulative share
    first exceeds ``(i + 1/2) / n``. Cluster k then gets ``n * label_probs[k]`` samples up to
    one, in cluster order, and a small ``n`` (a 64-image grid of 500 clusters) still spreads
    over all the clusters in proportion rather than taking the largest ones."""
    if not self.num_classes:
      return None
    if not self.label_probs:
      return np.arange(n, dtype=np.int32) % self.num_classes
    edges = np.cumsum(np.asarray(self.label_probs, np.float64))
    picks = np.searchsorted(edges / edges[-1], (np.arange(n) + 0.5) / n, side='right')
    return np.minimum(picks, self.num_classes - 1).astype(np.int32)

  def grid_latents(self, n):
    return jax.random.normal(jax.random.fold_in(self.root_key, steps.RNG_GRID), (n, self.config.model.latent_dim))

  def grid_inputs(self, n: int):
    """(latents, labels, columns) of the fixed-latent training picture of about ``n`` samples.

    Unconditional: ``n`` latents, labels None, a square-ish grid. Conditional: one row per
    class and ``max(1, n // K)`` columns (``row_labels``); column j holds the same latent in
    every row, so a row shows one class and a column one "style". Label-free clusters
    (``config.data.clusters``): a plain grid, each sample's cluster drawn by its share.
    """
    if not self.num_classes:
      return self.grid_latents(n), None, 0
    if self.label_probs and not self.cluster_classes:
      return self.grid_latents(n), self.class_labels(n), 0  # a plain grid, clusters by share
    cols = max(1, n // self.data_classes)
    return (jnp.tile(self.grid_latents(cols), (self.data_classes, 1)), self.row_labels(cols),
            cols)

  @property
  def data_classes(self) -> int:
    """The data's classes that G's labels stand for: ``num_classes``, or with
    ``config.data.clusters_per_class`` the classes the clusters were split from."""
    return max(self.cluster_classes) + 1 if self.cluster_classes else self.num_classes

  def row_labels(self, cols: int) -> np.ndarray:
    """Labels of a picture with one row per data class and ``cols`` columns (int32, row
    major): the class itself, or with ``config.data.clusters_per_class`` column j of row c
    made for the j-th cluster of class c (cycling), so a row shows the class's shapes."""
    if not self.cluster_classes:
      return np.repeat(np.arange(self.num_classes, dtype=np.int32), cols)
    of = np.asarray(self.cluster_classes)
    per_row = [np.flatnonzero(of == c) for c in range(self.data_classes)]
    return np.concatenate([ids[np.arange(cols) % len(ids)] for ids in per_row]).astype(np.int32)

  def sample(self, state, n: int, key=None, use_ema=True, chunk: int = 500,
             labels=None) -> np.ndarray:
    """``n`` generated samples (numpy float32 in [-1, 1] for images), eval-mode G.

    A conditional model makes sample i for ``labels[i]`` (int ``[n]``); by default for
    ``class_labels(n)``, every class equally often.
    """
    key = jax.random.fold_in(self.root_key, steps.RNG_SAMPLE) if key is None else key
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


def load_data(config):
  """(Source, records) of ``config.data``. Records (a random-access source) when the data
  streams (``config.data.pipeline``, 'auto' by the images' size against
  ``data.device_cache_mb``), else None and a device-resident Source."""
  d = config.data
  probe = d.get('source') == 'tfds' and d.get('pipeline', 'auto') == 'auto'
  if not (data.uses_records(d) or probe):
    return data.load_source(d), None
  records = data.load_records(d)
  mode = stream.choose_pipeline(d.get('pipeline', 'auto'), records.info,
                                d.get('device_cache_mb', 1024.0))
  if mode == 'stream':
    for key in ('clusters', 'clusters_per_class'):
      if d.get(key, 0):
        raise ConfigError(f'config.data.{key}={d[key]} needs the images on the device, but '
                          f'{records.info.get("name")} streams (pipeline={d.get("pipeline")!r}); '
                          f"set config.data.pipeline='device' or {key}=0")
    return data.Source(arrays=None, draw=None, info=dict(records.info)), records
  if not data.uses_records(d):  # a TFDS dataset that fits: the whole-split reader
    return data.load_source(d), None
  return data.records_source(records, d.get('skip_bad_files', False), d.get('flip', False)), None


def pick_real_images(config, source, records, n: int) -> np.ndarray:
  """``n`` of the training images of ``load_data(config)``'s (source, records), uint8, chosen by
  ``config.seed``; read one by one from the records when the data streams."""
  count = source.info['num_examples']
  pick = np.sort(np.random.RandomState(config.seed).permutation(count)[:n])
  if records is None:
    return np.asarray(source.arrays['image'])[pick]
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  out = []
  for i in tqdm(pick, desc='real images for FID', unit='img', mininterval=1.0,
                disable=len(pick) < 2000 or not parallel.is_main_process()):
    try:
      out.append(records[int(i)]['image'])
    except DataError:
      if not config.data.get('skip_bad_files', False):
        raise
  return np.stack(out)


def restore_run(workdir_path, step=None):
  """(config, data shape, Experiment, state at ``step`` or the latest) of a launch.py run."""
  if not workdir_path:
    raise UserError('--workdir is required: the run directory written by launch.py')
  config, info = workdir.load_run_info(workdir_path)
  shape, num_classes = tuple(info['shape']), info.get('num_classes')
  label_probs = info.get('label_probs') or ()
  ckpt = checkpointing.Checkpoints(workdir.path(workdir_path, workdir.CHECKPOINTS), create=False)
  steps_saved = ckpt.all_steps()
  if not steps_saved:
    raise UserError(f'--workdir={workdir_path} has no checkpoint under {workdir_path}/checkpoints; '
                    'train it first with launch.py')
  if step is not None and step not in steps_saved:
    raise UserError(f'--step={step} has no checkpoint; saved steps: {steps_saved}')
  exp = Experiment(config, data_shape=shape, num_classes=num_classes, label_probs=label_probs,
                   cluster_classes=info.get('cluster_classes') or ())
  state = ckpt.restore(exp.abstract_state(), step)
  ckpt.close()
  return config, shape, exp, state
