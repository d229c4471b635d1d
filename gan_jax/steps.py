"""Pure train steps: ``(state, batch, rng) -> (new_state, metrics)``.

No Python side effects and no device assumptions: the same functions run under ``jax.jit``
(optionally with shardings over a device mesh) and under ``jax.pmap``. Under pmap pass
``axis_name``: gradients and metrics are ``pmean``-ed over it and each device draws its own slice
of one global latent batch, so a pmap run computes what the single-device run computes. (Build the
models with ``bn_axis_name`` set to the same name for cross-replica BatchNorm statistics.)

Static options live in a hashable ``StepConfig``; bind it with ``functools.partial`` before
compiling. Randomness: the caller passes a key for this step (``fold_in(key(seed), step)``); the
steps split it, so identical inputs give identical outputs.

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

from gan_jax import losses, penalties
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
    share_g_forward: with ``n_critic == 1``, run G forward once per train step, as PyTorch
      DCGAN code does: ``jax.vjp`` through G gives the fake batch and its pullback; D updates on
      the stopped fake, then G's gradient is the pullback of dL_G/dfake through the *updated* D.
      The G update then uses the D step's latents (off: a fresh batch and a second G forward).
    num_classes: classes of a class-conditional G and D (0 = unconditional). The steps then
      take the real labels and draw the fake ones.
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
  share_g_forward: bool = False
  num_classes: int = 0

  @property
  def g_needs_real(self) -> bool:
    return self.feature_matching or losses.get_loss(self.loss).g_uses_real


def _pmean(tree, axis_name):
  return tree if axis_name is None else jax.lax.pmean(tree, axis_name)


def sample_latents(key, batch_size: int, latent_dim: int, axis_name: Optional[str] = None):
  """z ~ N(0, I), ``[batch_size, latent_dim]``.

  Under pmap (``axis_name`` set) ``batch_size`` is the per-device batch: every device draws the
  same global batch from the same key and keeps its own slice, so the run does not depend on the
  number of devices.
  """
  if axis_name is None:
    return jax.random.normal(key, (batch_size, latent_dim))
  n = jax.lax.psum(1, axis_name)
  z = jax.random.normal(key, (n * batch_size, latent_dim))
  return jax.lax.dynamic_slice_in_dim(z, jax.lax.axis_index(axis_name) * batch_size, batch_size)


# fold_in tag of the key that fake labels are drawn from: a separate stream, so adding labels
# leaves every other draw of a step (latents, noise, dropout) as it is.
LABEL_TAG = 0x1abe1


def sample_labels(key, batch_size: int, num_classes: int, axis_name: Optional[str] = None):
  """y ~ Uniform{0, ..., num_classes - 1}, int32 ``[batch_size]``.

  Under pmap ``batch_size`` is the per-device batch; as in ``sample_latents`` every device draws
  the global batch and keeps its slice.
  """
  if axis_name is None:
    return jax.random.randint(key, (batch_size,), 0, num_classes, jnp.int32)
  n = jax.lax.psum(1, axis_name)
  y = jax.random.randint(key, (n * batch_size,), 0, num_classes, jnp.int32)
  return jax.lax.dynamic_slice_in_dim(y, jax.lax.axis_index(axis_name) * batch_size, batch_size)


def fake_labels(rng, batch_size: int, cfg: 'StepConfig'):
  """The labels a step with key ``rng`` makes its fakes for (None when unconditional)."""
  if not cfg.num_classes:
    return None
  return sample_labels(jax.random.fold_in(rng, LABEL_TAG), batch_size, cfg.num_classes,
                       cfg.axis_name)


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


def noise_std(cfg: 'StepConfig', step):
  """Instance-noise std at train step ``step``: linear decay from ``cfg.instance_noise`` to 0."""
  if cfg.instance_noise <= 0:
    return 0.0
  if cfg.instance_noise_steps <= 0:
    return cfg.instance_noise
  frac = jnp.clip(1.0 - step.astype(jnp.float32) / cfg.instance_noise_steps, 0.0, 1.0)
  return cfg.instance_noise * frac


def _add_noise(x, std, key):
  if isinstance(std, float) and std == 0.0:
    return x
  return x + std * jax.random.normal(key, x.shape, x.dtype)


def _d_loss(cfg: 'StepConfig', loss: losses.GANLoss, real_logits, fake_logits):
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


def d_step(state: GANState, real, rng, cfg: StepConfig = StepConfig(),
           fake=None, real_labels=None) -> Tuple[GANState, Metrics]:
  """One discriminator update on ``real`` ``[B, ...]`` against a fresh fake batch.

  G runs in train mode (batch-statistics BN, as in the D update of DCGAN) but its state is left
  untouched: only ``state.d`` changes. ``fake`` supplies the fake batch instead (it must be
  G(d_latents(rng, B, cfg)) — with labels ``fake_labels(rng, B, cfg)`` — for the step to mean the
  same). Conditional models (``cfg.num_classes``) need ``real_labels`` int ``[B]``; D judges the
  fakes with ``fake_labels(rng, B, cfg)``. The penalties evaluate D with the real labels, except
  R2 (on fakes), which uses the fake ones.
  """
  _, k_real, k_fake, k_noise, k_pen = jax.random.split(rng, 5)
  loss = losses.get_loss(cfg.loss)
  _check_real_labels(cfg, real_labels, 'd_step')
  y_fake = fake_labels(rng, real.shape[0], cfg)
  if fake is None:
    fake, _ = _apply(state.g, state.g.params, d_latents(rng, real.shape[0], cfg), train=True,
                     **_label_kw(y_fake))
  fake = jax.lax.stop_gradient(fake)
  sigma = noise_std(cfg, state.g.step)
  k_nr, k_nf = jax.random.split(k_noise)
  real_in, fake_in = _add_noise(real, sigma, k_nr), _add_noise(fake, sigma, k_nf)

  def loss_fn(params):
    d = state.d.replace(params=params)
    real_logits, stats = _apply(d, params, real_in, train=True, rng=k_real,
                                **_label_kw(real_labels))
    fake_logits, stats = _apply(d.replace(batch_stats=stats), params, fake_in, train=True,
                                rng=k_fake, **_label_kw(y_fake))
    total = _d_loss(cfg, loss, real_logits, fake_logits)
    pen = jnp.zeros((), jnp.float32)
    penalty_fn = penalties.get_penalty(cfg.penalty)
    if cfg.penalty != 'none':
      pen_labels = y_fake if cfg.penalty == 'r2' else real_labels
      d_fn = lambda x: _apply(d.replace(batch_stats=stats), params, x, train=True, rng=k_real,
                              **_label_kw(pen_labels))[0]
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


def g_step(state: GANState, rng, batch_size: int, cfg: StepConfig = StepConfig(),
           real=None, z=None, forward=None, real_labels=None,
           labels=None) -> Tuple[GANState, Metrics]:
  """One generator update on a fresh latent batch of ``batch_size`` (per device under pmap).

  D runs in train mode but its state is left untouched: only ``state.g`` (and the EMA) change.
  ``real`` is passed to the G loss for objectives that compare against real logits; plain
  objectives ignore it. ``z`` fixes the latents. ``forward = (fake, pullback, g_stats)`` from
  ``jax.vjp`` through G reuses a G forward already run (``share_g_forward``).

  Conditional models (``cfg.num_classes``): the fakes are made for ``labels`` (default
  ``fake_labels(rng, batch_size, cfg)``; with ``z`` or ``forward`` pass the labels they were made
  for) and D judges them with those labels; ``real`` comes with ``real_labels``.
  """
  k_z, k_fake, k_real, k_noise = jax.random.split(rng, 4)
  loss = losses.get_loss(cfg.loss)
  if cfg.num_classes:
    if labels is None:
      if z is not None or forward is not None:
        raise ValueError('g_step: with z or forward, a conditional model needs the labels the '
                         'fakes were made for')
      labels = fake_labels(rng, batch_size, cfg)
  elif labels is not None:
    raise ValueError('g_step: got labels but cfg.num_classes=0 (an unconditional model)')
  if real is not None:
    _check_real_labels(cfg, real_labels, 'g_step')
  if z is None and forward is None:
    z = sample_latents(k_z, batch_size, cfg.latent_dim, cfg.axis_name)
  sigma = noise_std(cfg, state.g.step)
  k_nr, k_nf = jax.random.split(k_noise)
  real_logits = real_features = None
  if real is not None:
    out, _ = _apply(state.d, state.d.params, _add_noise(real, sigma, k_nr), train=True, rng=k_real,
                    return_features=cfg.feature_matching, **_label_kw(real_labels))
    real_logits, real_features = out if cfg.feature_matching else (out, None)
    real_logits = jax.lax.stop_gradient(real_logits)

  def loss_of_fake(fake):
    fake = _add_noise(fake, sigma, k_nf)
    if cfg.feature_matching:
      (_, fake_features), _ = _apply(state.d, state.d.params, fake, train=True, rng=k_fake,
                                     return_features=True, **_label_kw(labels))
      # ||E f(x) - E f(G(z))||^2 with the real mean as a fixed target.
      target = jax.lax.stop_gradient(_pmean(jnp.mean(real_features, 0), cfg.axis_name))
      return jnp.sum(jnp.square(target - jnp.mean(fake_features, 0)))
    fake_logits, _ = _apply(state.d, state.d.params, fake, train=True, rng=k_fake,
                            **_label_kw(labels))
    return loss.g(real_logits, fake_logits)

  if forward is None:
    def loss_fn(params):
      fake, g_stats = _apply(state.g, params, z, train=True, **_label_kw(labels))
      return loss_of_fake(fake), g_stats
    (loss_g, g_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.g.params)
  else:
    fake, pullback, g_stats = forward
    loss_g, d_fake = jax.value_and_grad(loss_of_fake)(fake)
    (grads,) = pullback(d_fake)
  grads = _pmean(grads, cfg.axis_name)
  g = state.g.apply_gradients(grads=grads).replace(batch_stats=_pmean(g_stats, cfg.axis_name))
  ema_params = state.ema_params
  if ema_params is not None and cfg.ema_decay > 0:
    t = state.g.step.astype(jnp.float32)
    decay = jnp.minimum(cfg.ema_decay, (1.0 + t) / (10.0 + t))
    ema_params = optax.incremental_update(g.params, ema_params, 1.0 - decay)
  metrics = {'loss_G': loss_g, 'grad_norm_G': optax.tree.norm(grads)}
  return state.replace(g=g, ema_params=ema_params), _pmean(metrics, cfg.axis_name)


def train_step(state: GANState, reals, rng, cfg: StepConfig = StepConfig(),
               labels=None) -> Tuple[GANState, Metrics]:
  """``cfg.n_critic`` D steps, then one G step.

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
  if reals.shape[0] != cfg.n_critic:
    raise ValueError(f'reals has {reals.shape[0]} batches on its leading axis, expected '
                     f'n_critic={cfg.n_critic}')
  _check_real_labels(cfg, labels, 'train_step')
  if labels is not None and labels.shape != reals.shape[:2]:
    raise ValueError(f'labels have shape {labels.shape}; expected {reals.shape[:2]} '
                     '(one per real image)')
  d_keys = jax.random.split(jax.random.fold_in(rng, 0), cfg.n_critic)
  g_key = jax.random.fold_in(rng, 1)
  g_real = reals[-1] if cfg.g_needs_real else None
  g_real_labels = labels[-1] if (cfg.g_needs_real and labels is not None) else None
  if cfg.n_critic == 1 and cfg.share_g_forward:
    z = d_latents(d_keys[0], reals.shape[1], cfg)
    y = fake_labels(d_keys[0], reals.shape[1], cfg)
    fake, pullback, g_stats = jax.vjp(
        lambda p: _apply(state.g, p, z, train=True, **_label_kw(y)), state.g.params, has_aux=True)
    state, d_metrics = d_step(state, reals[0], d_keys[0], cfg, fake=fake,
                              real_labels=None if labels is None else labels[0])
    state, g_metrics = g_step(state, g_key, reals.shape[1], cfg, real=g_real,
                              forward=(fake, pullback, g_stats), real_labels=g_real_labels,
                              labels=y)
    return state, {**d_metrics, **g_metrics}
  if cfg.n_critic == 1:
    state, d_metrics = d_step(state, reals[0], d_keys[0], cfg,
                              real_labels=None if labels is None else labels[0])
  else:
    def body(s, xs):
      return d_step(s, xs[0], xs[1], cfg, real_labels=xs[2])
    state, d_metrics = jax.lax.scan(body, state, (reals, d_keys, labels))
    d_metrics = jax.tree.map(lambda m: m[-1], d_metrics)
  state, g_metrics = g_step(state, g_key, reals.shape[1], cfg, real=g_real,
                            real_labels=g_real_labels)
  return state, {**d_metrics, **g_metrics}
