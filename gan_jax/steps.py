"""Pure train steps: ``(state, batch, rng) -> (new_state, metrics)``.

  d_step            one D update against fresh fakes        (d_step_on_fakes: given fakes)
  g_step            one G update on fresh latents           (g_step_on_latents: given latents)
  train_step        n_critic D steps, then one G step        (Goodfellow et al., 2014, alg. 1)
  train_step_shared_forward   one G forward shared by the D and the G update (PyTorch DCGAN)
  train_step_on_data          train_step on batches drawn inside the step from on-device data

No Python side effects and no device assumptions: the same functions run under ``jax.jit``
(optionally with shardings over a device mesh) and under ``jax.pmap``. Under pmap pass
``axis_name``: gradients and metrics are ``pmean``-ed over it and each device draws its own slice
of one global latent batch, so a pmap run computes what the single-device run computes. (Build the
models with ``bn_axis_name`` set to the same name for cross-replica BatchNorm statistics.)

Static options live in a hashable ``StepConfig``; bind it with ``functools.partial`` before
compiling. Randomness: the caller passes a key for this step (``fold_in(key(seed), step)``); the
steps split it, so identical inputs give identical outputs. ``RNG_*`` name the streams a run
derives from its seed.

Class-conditional models (``cfg.num_classes > 0``): D judges real images with their own labels
and fakes with the labels G made them for, drawn uniformly from the classes out of the step's
key (``fold_in(key, LABEL_TAG)``, so the unconditional steps' random streams are unchanged).
Unconditional steps (``num_classes == 0``) never pass labels to the nets.
"""

import dataclasses
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import optax

from gan_jax import augment, diversity, losses, penalties
from gan_jax.draws import (LABEL_TAG, add_noise, fake_labels, noise_std, sample_labels,  # noqa: F401
                           sample_latents)
from gan_jax.state import GANState, ModelState

Metrics = dict


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Static options of the train step.

  Attributes:
    loss: name of the objective in ``losses.LOSSES``.
    n_critic: D updates per G update.
    latent_dim: size of z ~ N(0, I).
    ema_decay: decay of the EMA of G's params (0 = off). Warm-up: the decay used at step t is
      ``min(ema_decay, (1 + t) / (10 + t))`` so early averages are not dominated by the init.
    axis_name: the pmap axis to reduce over, or None under jit.
    penalty: D regulariser in ``penalties.PENALTIES`` ('none', 'gp', 'gp_one_sided', 'r1', 'r2',
      'dragan'), weighted by ``penalty_weight`` (lambda for GP/DRAGAN, gamma for R1/R2) and
      applied every ``penalty_every`` D steps, scaled by that factor (lazy regularisation).
    weight_clip: WGAN weight clipping of D's params to [-c, c] after each update (0 = off).
    label_smoothing: one-sided label smoothing (Salimans et al., 2016): real targets 1 - alpha
      in the D loss (BCE objectives only).
    instance_noise: std of Gaussian noise added to every D input (real and fake; Sønderby et al.,
      2017), annealed linearly to 0 over ``instance_noise_steps`` train steps (0 = constant).
    feature_matching: G minimises ||E f(x) - E f(G(z))||^2 over D's last feature layer instead
      of the objective's G loss (Salimans et al., 2016).
    augment: DiffAugment policies (``gan_jax.augment.POLICIES``, in their order) that every D
      input, real and fake, in the D and the G step, goes through before the instance noise;
      ``augment_strength`` scales their magnitudes (1 = the paper's, 0 = none).
    mode_seeking: weight of G's mode-seeking regulariser (``gan_jax.diversity``; 0 = off):
      pairs of fakes share a label and G is rewarded for making them differ as their latents do.
    share_g_forward: ``train_step`` runs ``train_step_shared_forward`` (one G forward per step,
      its pullback reused by the G update; ``n_critic == 1``).
    num_classes: classes of a class-conditional G and D (0 = unconditional). The steps then
      take the real labels and draw the fake ones.
    label_probs: the fakes' label distribution, one probability per class; () = uniform
      (k-means clusters of unequal size: ``gan_jax.data.clusters``).
  """
  loss: str = 'ns'
  n_critic: int = 1
  latent_dim: int = 100
  ema_decay: float = 0.0
  axis_name: Optional[str] = None
  penalty: str = 'none'
  penalty_weight: float = 10.0
  penalty_every: int = 1
  weight_clip: float = 0.0
  label_smoothing: float = 0.0
  instance_noise: float = 0.0
  instance_noise_steps: int = 0
  feature_matching: bool = False
  augment: Tuple[str, ...] = ()
  augment_strength: float = 1.0
  mode_seeking: float = 0.0
  share_g_forward: bool = False
  num_classes: int = 0
  label_probs: Tuple[float, ...] = ()

  @property
  def g_needs_real(self) -> bool:
    return self.feature_matching or losses.get_loss(self.loss).g_uses_real


def _pmean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def _augmented(cfg: 'StepConfig', x, key):
  """``x`` through the config's DiffAugment policies, drawn from a stream of ``key`` (the key
  of the D call that judges ``x``); ``x`` itself when there are none."""
  if not cfg.augment:
    return x
  return augment.augment(x, jax.random.fold_in(key, augment.AUG_TAG), cfg.augment,
                         cfg.augment_strength)


def _label_kw(labels):
  """Keyword arguments that pass ``labels`` to a net; none for unconditional nets."""
  return {} if labels is None else {'labels': labels}


def _check_real_labels(cfg: 'StepConfig', labels, where: str):
  if cfg.num_classes and labels is None:
    raise ValueError(f'{where}: cfg.num_classes={cfg.num_classes} (a class-conditional model) '
                     'needs the real labels')
  if not cfg.num_classes and labels is not None:
    raise ValueError(f'{where}: got labels but cfg.num_classes=0 (an unconditional model)')


def _apply(ms: ModelState, params, x, *, train: bool, rng=None, **kwargs):
  """Runs a net; returns (output, new batch_stats). Dropout draws from ``rng`` when training.

  ``batch_stats`` holds BatchNorm statistics and spectral-norm power-iteration vectors.
  """
  variables = {'params': params, 'batch_stats': ms.batch_stats}
  rngs = {'dropout': rng} if rng is not None else {}
  if train and ms.batch_stats:
    out, updates = ms.apply_fn(variables, x, train=True, rngs=rngs, mutable=['batch_stats'],
                               **kwargs)
    return out, updates['batch_stats']
  return ms.apply_fn(variables, x, train=train, rngs=rngs, **kwargs), ms.batch_stats


def d_objective(cfg: 'StepConfig', loss: losses.GANLoss, real_logits, fake_logits):
  if cfg.label_smoothing > 0:
    if cfg.loss not in ('minimax', 'ns'):
      raise ValueError(f'label_smoothing applies to the BCE objectives minimax/ns, not {cfg.loss!r}')
    # One-sided: only the real targets move (Salimans et al., 2016, section 3.4).
    return (jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, 1.0 - cfg.label_smoothing))
            + jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, 0.0)))
  return loss.d(real_logits, fake_logits)


def generate(state: GANState, z, train: bool = False, use_ema: bool = True, labels=None):
  """G(z) (or G(z, labels) for a conditional G, int ``[B]``): images in [-1, 1]. Uses the EMA
  params when present and ``use_ema``."""
  params = state.ema_params if (use_ema and state.ema_params is not None) else state.g.params
  out, _ = _apply(state.g, params, z, train=train, **_label_kw(labels))
  return out


def d_latents(rng, batch_size: int, cfg: StepConfig):
  """The latents ``d_step(state, real, rng, cfg)`` draws for its fake batch."""
  return sample_latents(jax.random.split(rng, 5)[0], batch_size, cfg.latent_dim, cfg.axis_name)


# ----------------------------------------------------------------------------------------------
# The discriminator update.


def d_step_on_fakes(state: GANState, real, fake, rng, cfg: StepConfig = StepConfig(),
                    real_labels=None, fake_labels_=None) -> Tuple[GANState, Metrics]:
  """One discriminator update on ``real`` against a given ``fake`` batch (gradient stopped).

  Only ``state.d`` changes. ``d_step`` calls this with ``G(d_latents(rng))``; the shared-forward
  step with the fakes whose G pullback it keeps. Conditional models need ``real_labels`` and
  ``fake_labels_`` (the labels the fakes were made for), int ``[B]``.

  The penalty's critic ``d_fn`` runs D in inference mode (BatchNorm on the running statistics
  the step started with, no dropout), so that each sample's input gradient is the gradient of its
  own logit alone and the penalty of a batch is the mean of its samples' penalties
  (``gan_jax/penalties.py``). In training mode BatchNorm would couple the samples. R2 (on fakes) judges with the
  fake labels, the other penalties with the real ones.
  """
  _, k_real, k_fake, k_noise, k_pen = jax.random.split(rng, 5)
  loss = losses.get_loss(cfg.loss)
  _check_real_labels(cfg, real_labels, 'd_step')
  fake = jax.lax.stop_gradient(fake)
  sigma = noise_std(cfg, state.g.step)
  k_nr, k_nf = jax.random.split(k_noise)
  real_in = add_noise(_augmented(cfg, real, k_real), sigma, k_nr)
  fake_in = add_noise(_augmented(cfg, fake, k_fake), sigma, k_nf)
  penalty_fn = penalties.get_penalty(cfg.penalty)

  def loss_fn(params):
    d = state.d.replace(params=params)
    real_logits, stats = _apply(d, params, real_in, train=True, rng=k_real,
                                **_label_kw(real_labels))
    fake_logits, stats = _apply(d.replace(batch_stats=stats), params, fake_in, train=True,
                                rng=k_fake, **_label_kw(fake_labels_))
    total = d_objective(cfg, loss, real_logits, fake_logits)
    pen = jnp.zeros((), jnp.float32)
    if cfg.penalty != 'none':
      pen_labels = fake_labels_ if cfg.penalty == 'r2' else real_labels
      d_fn = lambda x: _apply(d, params, x, train=False, **_label_kw(pen_labels))[0]
      if cfg.penalty_every > 1:  # lazy: skip the double-backward on most steps
        pen = jax.lax.cond(state.d.step % cfg.penalty_every == 0,
                           lambda: cfg.penalty_every * penalty_fn(d_fn, real_in, fake_in, k_pen,
                                                                  cfg.penalty_weight),
                           lambda: jnp.zeros((), jnp.float32))
      else:
        pen = penalty_fn(d_fn, real_in, fake_in, k_pen, cfg.penalty_weight)
    return total + pen, (total, pen, real_logits, fake_logits, stats)

  (_, (loss_d, pen, real_logits, fake_logits, stats)), grads = jax.value_and_grad(
      loss_fn, has_aux=True)(state.d.params)
  grads = _pmean(grads, cfg.axis_name)
  stats = _pmean(stats, cfg.axis_name)  # identical already when BN is cross-replica
  d = state.d.apply_gradients(grads=grads).replace(batch_stats=stats)
  if cfg.weight_clip > 0:
    d = d.replace(params=penalties.clip_weights(d.params, cfg.weight_clip))
  metrics = {
      'loss_D': loss_d,
      'D_real': jnp.mean(jax.nn.sigmoid(real_logits)),
      'D_fake': jnp.mean(jax.nn.sigmoid(fake_logits)),
      'grad_norm_D': optax.tree.norm(grads),
      'penalty': pen,
  }
  return state.replace(d=d), _pmean(metrics, cfg.axis_name)


def d_step(state: GANState, real, rng, cfg: StepConfig = StepConfig(),
           real_labels=None) -> Tuple[GANState, Metrics]:
  """One discriminator update on ``real`` ``[B, ...]`` against a fresh fake batch.

  The fakes are ``G(d_latents(rng, B, cfg))`` (for a conditional model made for
  ``fake_labels(rng, B, cfg)``), with G in train mode (batch-statistics BN, as in the D update of
  DCGAN) but G's state left untouched: only ``state.d`` changes. Conditional models need
  ``real_labels`` int ``[B]``.
  """
  _check_real_labels(cfg, real_labels, 'd_step')
  y_fake = fake_labels(rng, real.shape[0], cfg)
  fake, _ = _apply(state.g, state.g.params, d_latents(rng, real.shape[0], cfg), train=True,
                   **_label_kw(y_fake))
  return d_step_on_fakes(state, real, fake, rng, cfg, real_labels, y_fake)


# ----------------------------------------------------------------------------------------------
# The generator update.


def _g_loss_of_fake(state: GANState, rng, cfg: StepConfig, real, real_labels, labels, z):
  """``fake -> G loss`` for this step: D (train mode, its state untouched) judges ``fake``
  made for ``labels`` (from the latents ``z``); objectives that compare with real logits, and
  feature matching, see ``real``; ``cfg.mode_seeking`` adds the mode-seeking regulariser of
  ``fake`` and ``z``. ``rng`` is the G step's key."""
  _, k_fake, k_real, k_noise = jax.random.split(rng, 4)
  loss = losses.get_loss(cfg.loss)
  sigma = noise_std(cfg, state.g.step)
  k_nr, k_nf = jax.random.split(k_noise)
  real_logits = real_features = None
  if real is not None:
    real_in = add_noise(_augmented(cfg, real, k_real), sigma, k_nr)
    out, _ = _apply(state.d, state.d.params, real_in, train=True, rng=k_real,
                    return_features=cfg.feature_matching, **_label_kw(real_labels))
    real_logits, real_features = out if cfg.feature_matching else (out, None)
    real_logits = jax.lax.stop_gradient(real_logits)

  def loss_of_fake(fake):
    if cfg.mode_seeking > 0:
      return (judged(fake)
              + cfg.mode_seeking * diversity.mode_seeking_loss(fake, jax.lax.stop_gradient(z)))
    return judged(fake)

  def judged(fake):
    fake = add_noise(_augmented(cfg, fake, k_fake), sigma, k_nf)
    if cfg.feature_matching:
      (_, fake_features), _ = _apply(state.d, state.d.params, fake, train=True, rng=k_fake,
                                     return_features=True, **_label_kw(labels))
      # ||E f(x) - E f(G(z))||^2 with the real mean as a fixed target.
      target = jax.lax.stop_gradient(_pmean(jnp.mean(real_features, 0), cfg.axis_name))
      return jnp.sum(jnp.square(target - jnp.mean(fake_features, 0)))
    fake_logits, _ = _apply(state.d, state.d.params, fake, train=True, rng=k_fake,
                            **_label_kw(labels))
    return loss.g(real_logits, fake_logits)

  return loss_of_fake


def _g_update(state: GANState, loss_g, grads, g_stats, cfg: StepConfig):
  """Applies G's gradients, its new BN statistics and the EMA; returns (state, metrics)."""
  grads = _pmean(grads, cfg.axis_name)
  g = state.g.apply_gradients(grads=grads).replace(batch_stats=_pmean(g_stats, cfg.axis_name))
  ema_params = state.ema_params
  if ema_params is not None and cfg.ema_decay > 0:
    t = state.g.step.astype(jnp.float32)
    decay = jnp.minimum(cfg.ema_decay, (1.0 + t) / (10.0 + t))
    ema_params = optax.incremental_update(g.params, ema_params, 1.0 - decay)
  metrics = {'loss_G': loss_g, 'grad_norm_G': optax.tree.norm(grads)}
  return state.replace(g=g, ema_params=ema_params), _pmean(metrics, cfg.axis_name)


def _check_g_inputs(cfg: StepConfig, real, real_labels, labels):
  if cfg.num_classes and labels is None:
    raise ValueError('g_step: a conditional model needs the labels the fakes are made for')
  if not cfg.num_classes and labels is not None:
    raise ValueError('g_step: got labels but cfg.num_classes=0 (an unconditional model)')
  if real is not None:
    _check_real_labels(cfg, real_labels, 'g_step')


def g_step_on_latents(state: GANState, z, rng, cfg: StepConfig = StepConfig(), real=None,
                      real_labels=None, labels=None) -> Tuple[GANState, Metrics]:
  """One generator update on the latents ``z`` ``[B, latent_dim]`` (made for ``labels`` int
  ``[B]`` when conditional). Only ``state.g`` and the EMA change; see ``g_step``."""
  _check_g_inputs(cfg, real, real_labels, labels)
  loss_of_fake = _g_loss_of_fake(state, rng, cfg, real, real_labels, labels, z)

  def loss_fn(params):
    fake, g_stats = _apply(state.g, params, z, train=True, **_label_kw(labels))
    return loss_of_fake(fake), g_stats

  (loss_g, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g.params)
  return _g_update(state, loss_g, grads, g_stats, cfg)


def g_step(state: GANState, rng, batch_size: int, cfg: StepConfig = StepConfig(),
           real=None, real_labels=None) -> Tuple[GANState, Metrics]:
  """One generator update on a fresh latent batch of ``batch_size`` (per device under pmap).

  D runs in train mode but its state is left untouched: only ``state.g`` (and the EMA) change.
  ``real`` is passed to the G loss for objectives that compare against real logits (and to
  feature matching); plain objectives ignore it. A conditional G makes its fakes for
  ``fake_labels(rng, batch_size, cfg)`` and D judges them with those; ``real`` then comes with
  ``real_labels``.
  """
  z = sample_latents(jax.random.split(rng, 4)[0], batch_size, cfg.latent_dim, cfg.axis_name)
  return g_step_on_latents(state, z, rng, cfg, real=real, real_labels=real_labels,
                           labels=fake_labels(rng, batch_size, cfg))


# ----------------------------------------------------------------------------------------------
# Train steps: D then G.


def _check_reals(reals, labels, cfg: StepConfig):
  if reals.shape[0] != cfg.n_critic:
    raise ValueError(f'reals has {reals.shape[0]} batches on its leading axis, expected '
                     f'n_critic={cfg.n_critic}')
  _check_real_labels(cfg, labels, 'train_step')
  if labels is not None and labels.shape != reals.shape[:2]:
    raise ValueError(f'labels have shape {labels.shape}; expected {reals.shape[:2]} '
                     '(one per real image)')


def train_step(state: GANState, reals, rng, cfg: StepConfig = StepConfig(),
               labels=None) -> Tuple[GANState, Metrics]:
  """``cfg.n_critic`` D steps, then one G step on fresh latents (Goodfellow et al., alg. 1).

  With ``cfg.share_g_forward`` this is ``train_step_shared_forward``.

  Args:
    state: the GANState.
    reals: real images ``[n_critic, B, ...]`` (one batch per D step).
    rng: this step's key (e.g. ``jax.random.fold_in(jax.random.key(seed), step)``).
    cfg: the static options.
    labels: the real images' labels, int ``[n_critic, B]``; required when ``cfg.num_classes``
      (a conditional model), else None.
  Returns:
    (new state, metrics of the last D step and of the G step).
  """
  if cfg.share_g_forward:
    return train_step_shared_forward(state, reals, rng, cfg, labels)
  _check_reals(reals, labels, cfg)
  d_keys = jax.random.split(jax.random.fold_in(rng, 0), cfg.n_critic)
  g_key = jax.random.fold_in(rng, 1)
  if cfg.n_critic == 1:
    state, d_metrics = d_step(state, reals[0], d_keys[0], cfg,
                              real_labels=None if labels is None else labels[0])
  else:
    def body(s, xs):
      return d_step(s, xs[0], xs[1], cfg, real_labels=xs[2])
    state, d_metrics = jax.lax.scan(body, state, (reals, d_keys, labels))
    d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
  g_real = reals[-1] if cfg.g_needs_real else None
  g_real_labels = labels[-1] if (cfg.g_needs_real and labels is not None) else None
  state, g_metrics = g_step(state, g_key, reals.shape[1], cfg, real=g_real,
                            real_labels=g_real_labels)
  return state, {**d_metrics, **g_metrics}


def train_step_shared_forward(state: GANState, reals, rng, cfg: StepConfig = StepConfig(),
                              labels=None) -> Tuple[GANState, Metrics]:
  """One D step and one G step that share a single G forward (the PyTorch DCGAN algorithm).

  ``jax.vjp`` through G gives the fake batch and its pullback. D updates on the (stopped) fakes,
  then G's gradient is the pullback of dL_G/dfake through the *updated* D. The G update thus
  sees the D step's latents instead of fresh ones: about 17 % fewer FLOPs per DCGAN step, and
  within seed variance of ``train_step`` on MNIST (benchmarks/README.md). Needs
  ``cfg.n_critic == 1``; arguments and results as ``train_step``.
  """
  if cfg.n_critic != 1:
    raise ValueError(f'train_step_shared_forward needs n_critic=1, got {cfg.n_critic}')
  _check_reals(reals, labels, cfg)
  d_key = jax.random.split(jax.random.fold_in(rng, 0), 1)[0]
  g_key = jax.random.fold_in(rng, 1)
  batch = reals.shape[1]
  z = d_latents(d_key, batch, cfg)
  y = fake_labels(d_key, batch, cfg)
  fake, pullback, g_stats = jax.vjp(
      lambda p: _apply(state.g, p, z, train=True, **_label_kw(y)), state.g.params, has_aux=True)
  state, d_metrics = d_step_on_fakes(state, reals[0], fake, d_key, cfg,
                                     real_labels=None if labels is None else labels[0],
                                     fake_labels_=y)
  g_real = reals[-1] if cfg.g_needs_real else None
  g_real_labels = labels[-1] if (cfg.g_needs_real and labels is not None) else None
  _check_g_inputs(cfg, g_real, g_real_labels, y)
  loss_of_fake = _g_loss_of_fake(state, g_key, cfg, g_real, g_real_labels, y, z)
  loss_g, d_fake = jax.value_and_grad(loss_of_fake)(fake)
  (grads,) = pullback(d_fake)
  state, g_metrics = _g_update(state, loss_g, grads, g_stats, cfg)
  return state, {**d_metrics, **g_metrics}


# ----------------------------------------------------------------------------------------------
# A train step on a dataset held on the device.

# fold_in tags of the random streams a run derives from ``jax.random.key(config.seed)``: the
# params' init, the train steps (``fold_in(fold_in(root, TRAIN), step)``), the fixed latents of
# the training picture, of ``sample`` and of the in-training evaluation.
RNG_INIT, RNG_TRAIN, RNG_GRID, RNG_SAMPLE, RNG_EVAL = 0, 1, 2, 3, 4


def train_step_on_data(state: GANState, arrays, train_key, cfg: StepConfig, *, draw,
                       batch_size: int, data_shape, batch_sharding=None
                       ) -> Tuple[GANState, Metrics]:
  """``train_step`` on batches drawn inside the step from a dataset held on the device.

  The step's key is ``fold_in(train_key, state.step)``; it splits into the key of the real
  batches (``draw(arrays, key, n) -> {'image': [n, ...], 'label': [n]}``, a data source's draw)
  and the key ``train_step`` gets. A run that resumes at step t therefore draws what an
  uninterrupted run draws at t. ``batch_size`` is the global batch per D step; ``data_shape``
  one example's shape; ``batch_sharding`` (optional) constrains the reals, shaped
  ``[n_critic, B, ...]``, e.g. to the mesh's data axis.
  """
  key = jax.random.fold_in(train_key, state.step)
  data_key, step_key = jax.random.split(key)
  batch = draw(arrays, data_key, cfg.n_critic * batch_size)
  reals = batch['image'].reshape((cfg.n_critic, batch_size) + tuple(data_shape))
  labels = batch['label'].reshape((cfg.n_critic, batch_size))
  return _train_step_on_reals(state, reals, labels, step_key, cfg, batch_sharding)


def train_step_on_batch(state: GANState, batch, train_key, cfg: StepConfig, *,
                        batch_sharding=None) -> Tuple[GANState, Metrics]:
  """``train_step`` on batches an input pipeline made (``gan_jax.data.stream``): ``batch`` is
  ``{'image': uint8 [n_critic, B, H, W, C], 'label': int [n_critic, B]}``, rescaled here to
  [-1, 1]. The step's key is split as in ``train_step_on_data``, so the latents of step t are
  the same whichever way the reals came."""
  key = jax.random.fold_in(train_key, state.step)
  _, step_key = jax.random.split(key)
  reals = (batch['image'].astype(jnp.float32) - 127.5) / 127.5
  return _train_step_on_reals(state, reals, batch['label'], step_key, cfg, batch_sharding)


def _train_step_on_reals(state, reals, labels, step_key, cfg, batch_sharding):
  if batch_sharding is not None:
    reals = jax.lax.with_sharding_constraint(reals, batch_sharding)
  labels = labels.astype(jnp.int32) if cfg.num_classes else None
  if labels is not None and batch_sharding is not None:
    labels = jax.lax.with_sharding_constraint(labels, batch_sharding)
  return train_step(state, reals, step_key, cfg, labels=labels)
