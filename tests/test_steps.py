"""Train steps: which params change, hand-computed gradients, determinism, one compile, pmap."""

import dataclasses
import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import steps
from gan_jax.models import dcgan, mlp
from gan_jax.state import create_state


def _linear_state(lr=1.0):
  """G(z) = w z + b (1-D), D(x) = a x + c: gradients have closed forms. SGD(lr) updates."""
  g = mlp.Generator(out_shape=(1,), hidden=(), tanh=False)
  d = mlp.Discriminator(hidden=(), pieces=1, input_dropout=0.0, dropout=0.0)
  return create_state(g, d, optax.sgd(lr), optax.sgd(lr), 1, (1,), jax.random.key(0), ema=True)


def _dcgan_state(ngf=8, ndf=8, bn_axis_name=None):
  g = dcgan.Generator(ngf=ngf, bn_axis_name=bn_axis_name)
  d = dcgan.Discriminator(ndf=ndf, bn_axis_name=bn_axis_name)
  return create_state(g, d, optax.adam(1e-3, 0.5), optax.adam(1e-3, 0.5), 16, (28, 28, 1),
                      jax.random.key(0), ema=True)


DC = steps.StepConfig(latent_dim=16)


def _sig(x):
  return 1 / (1 + np.exp(-np.asarray(x, np.float64)))


def test_d_step_gradient_matches_closed_form():
  state = _linear_state()
  real = jnp.array([[0.5], [1.5], [-0.3], [2.0]])
  rng = jax.random.key(7)
  new, metrics = steps.d_step(state, real, rng, steps.StepConfig(latent_dim=1))
  w, b = [np.asarray(state.g.params['Dense_0'][k]).ravel()[0] for k in ('kernel', 'bias')]
  a, c = [np.asarray(state.d.params['Dense_0'][k]).ravel()[0] for k in ('kernel', 'bias')]
  k_z = jax.random.split(rng, 3)[0]
  z = np.asarray(jax.random.normal(k_z, (4, 1))).ravel()
  xr, xf = np.asarray(real).ravel(), w * z + b
  lr_, lf = a * xr + c, a * xf + c
  grad_a = np.mean(-(1 - _sig(lr_)) * xr) + np.mean(_sig(lf) * xf)
  grad_c = np.mean(-(1 - _sig(lr_))) + np.mean(_sig(lf))
  np.testing.assert_allclose(new.d.params['Dense_0']['kernel'].ravel()[0], a - grad_a, rtol=1e-5)
  np.testing.assert_allclose(new.d.params['Dense_0']['bias'].ravel()[0], c - grad_c, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss_D'], -np.mean(np.log(_sig(lr_))) -
                             np.mean(np.log(1 - _sig(lf))), rtol=1e-5)
  chex.assert_trees_all_equal(new.g, state.g)  # a D step leaves G alone


@pytest.mark.parametrize('loss', ['ns', 'minimax'])
def test_g_step_gradient_matches_closed_form(loss):
  state = _linear_state()
  rng = jax.random.key(3)
  new, metrics = steps.g_step(state, rng, 5, steps.StepConfig(latent_dim=1, loss=loss))
  w, b = [np.asarray(state.g.params['Dense_0'][k]).ravel()[0] for k in ('kernel', 'bias')]
  a, c = [np.asarray(state.d.params['Dense_0'][k]).ravel()[0] for k in ('kernel', 'bias')]
  z = np.asarray(jax.random.normal(jax.random.split(rng, 3)[0], (5, 1))).ravel()
  lf = a * (w * z + b) + c
  # dL/dl: NS -log sig(l) -> -(1 - sig(l)); minimax log(1 - sig(l)) -> -sig(l)
  dl = -(1 - _sig(lf)) if loss == 'ns' else -_sig(lf)
  grad_w, grad_b = np.mean(dl * a * z), np.mean(dl * a)
  np.testing.assert_allclose(new.g.params['Dense_0']['kernel'].ravel()[0], w - grad_w, rtol=1e-5)
  np.testing.assert_allclose(new.g.params['Dense_0']['bias'].ravel()[0], b - grad_b, rtol=1e-5)
  chex.assert_trees_all_equal(new.d, state.d)  # a G step leaves D alone
  assert int(new.g.step) == 1 and int(new.d.step) == 0


def test_steps_touch_only_their_own_net_with_batchnorm():
  state = _dcgan_state()
  real = jax.random.uniform(jax.random.key(1), (8, 28, 28, 1), minval=-1, maxval=1)
  after_d, _ = steps.d_step(state, real, jax.random.key(2), DC)
  chex.assert_trees_all_equal(after_d.g, state.g)
  chex.assert_trees_all_equal(after_d.ema_params, state.ema_params)
  changed = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), after_d.d.params, state.d.params)
  assert all(jax.tree.leaves(changed))
  assert any(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                                          after_d.d.batch_stats, state.d.batch_stats)))
  after_g, _ = steps.g_step(after_d, jax.random.key(3), 8, DC)
  chex.assert_trees_all_equal(after_g.d, after_d.d)
  assert all(jax.tree.leaves(jax.tree.map(lambda a, b: bool(jnp.any(a != b)),
                                          after_g.g.params, after_d.g.params)))


def test_steps_are_deterministic_for_a_fixed_key():
  state = _dcgan_state()
  reals = jax.random.uniform(jax.random.key(1), (1, 8, 28, 28, 1), minval=-1, maxval=1)
  f = jax.jit(functools.partial(steps.train_step, cfg=DC))
  a, ma = f(state, reals, jax.random.key(5))
  b, mb = f(state, reals, jax.random.key(5))
  chex.assert_trees_all_equal((a, ma), (b, mb))
  c, _ = f(state, reals, jax.random.key(6))
  assert not np.array_equal(c.g.params['Dense_0']['kernel'], a.g.params['Dense_0']['kernel'])


def test_ema_follows_g_with_warmup():
  state = _linear_state(lr=0.1)
  cfg = steps.StepConfig(latent_dim=1, ema_decay=0.99)
  new, _ = steps.g_step(state, jax.random.key(0), 4, cfg)
  # step 0: decay = min(0.99, 1/10) = 0.1 -> ema = 0.1 * old + 0.9 * new
  want = jax.tree.map(lambda o, n: 0.1 * o + 0.9 * n, state.ema_params, new.g.params)
  chex.assert_trees_all_close(new.ema_params, want, rtol=1e-6)


def test_n_critic_runs_that_many_d_updates():
  state = _linear_state(lr=0.01)
  reals = jnp.ones((3, 4, 1))
  new, m = jax.jit(functools.partial(steps.train_step, cfg=steps.StepConfig(latent_dim=1, n_critic=3)))(
      state, reals, jax.random.key(0))
  assert int(new.d.step) == 3 and int(new.g.step) == 1
  assert set(m) == {'loss_D', 'loss_G', 'D_real', 'D_fake', 'grad_norm_D', 'grad_norm_G', 'penalty'}
  with pytest.raises(ValueError, match='n_critic=3'):
    steps.train_step(state, reals[:2], jax.random.key(0), steps.StepConfig(latent_dim=1, n_critic=3))


def test_train_step_compiles_once():
  state = _linear_state(lr=0.01)
  traced = chex.assert_max_traces(steps.train_step, n=1)
  f = jax.jit(functools.partial(traced, cfg=steps.StepConfig(latent_dim=1)), donate_argnums=0)
  for i in range(5):
    state, _ = f(state, jnp.full((1, 4, 1), float(i)), jax.random.fold_in(jax.random.key(0), i))
  assert int(state.g.step) == 5


def test_pmap_matches_jit_on_8_devices():
  """Same global batch: 8-way pmap with pmean'd grads and cross-replica BN == one jit call."""
  n = jax.local_device_count()
  assert n == 8, 'conftest sets 8 fake CPU devices'
  per_dev, k_steps = 2, 3
  cfg = steps.StepConfig(latent_dim=16, ema_decay=0.9)
  jit_state = _dcgan_state()
  pmap_state = jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape),
                            _dcgan_state(bn_axis_name='data'))
  jit_step = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  pmap_step = jax.pmap(functools.partial(steps.train_step,
                                         cfg=dataclasses.replace(cfg, axis_name='data')),
                       axis_name='data', in_axes=(0, 1, None))
  for i in range(k_steps):
    reals = jax.random.uniform(jax.random.key(100 + i), (1, n * per_dev, 28, 28, 1), minval=-1,
                               maxval=1)
    key = jax.random.key(i)
    jit_state, jm = jit_step(jit_state, reals, key)
    pmap_state, pm = pmap_step(pmap_state, reals.reshape(1, n, per_dev, 28, 28, 1), key)
  first = jax.tree.map(lambda x: x[0], pmap_state)
  diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
      jax.tree.leaves((first.g.params, first.d.params, first.g.batch_stats, first.ema_params)),
      jax.tree.leaves((jit_state.g.params, jit_state.d.params, jit_state.g.batch_stats,
                       jit_state.ema_params))))
  print(f'\npmap vs jit, {k_steps} DCGAN steps on 8 devices: max |diff| = {diff:.2e}')
  chex.assert_trees_all_close(first.g.params, jit_state.g.params, atol=2e-5)
  chex.assert_trees_all_close(first.d.params, jit_state.d.params, atol=2e-5)
  chex.assert_trees_all_close(first.g.batch_stats, jit_state.g.batch_stats, atol=2e-5)
  chex.assert_trees_all_close(first.ema_params, jit_state.ema_params, atol=2e-5)
  np.testing.assert_allclose(pm['loss_D'][0], jm['loss_D'], rtol=1e-4)



@pytest.mark.parametrize('loss,fm', [('ragan', False), ('ns', True)])
def test_shared_g_forward_equals_the_two_forward_step_on_the_same_latents(loss, fm):
  """share_g_forward: one G forward + vjp pullback through the *updated* D == d_step then a
  g_step that recomputes G on the D step's latents (BN in G and D, EMA on)."""
  state = _dcgan_state()
  reals = jax.random.uniform(jax.random.key(1), (1, 8, 28, 28, 1), minval=-1, maxval=1)
  rng = jax.random.key(5)
  cfg = dataclasses.replace(DC, loss=loss, feature_matching=fm, ema_decay=0.9)
  shared, ms = jax.jit(functools.partial(
      steps.train_step, cfg=dataclasses.replace(cfg, share_g_forward=True)))(state, reals, rng)
  d_key = jax.random.split(jax.random.fold_in(rng, 0), 1)[0]

  @jax.jit
  def manual_step(state):
    z = steps.d_latents(d_key, 8, cfg)
    state, _ = steps.d_step(state, reals[0], d_key, cfg)
    return steps.g_step_on_latents(state, z, jax.random.fold_in(rng, 1), cfg,
                                   real=reals[0] if cfg.g_needs_real else None)

  manual, mm = manual_step(state)
  # Adam's first update is ~lr * sign(grad): float rounding in near-zero gradients of the two
  # programs can move a few weights by up to ~lr; all others agree to float precision.
  diffs = [np.abs(np.asarray(a) - np.asarray(b)) for a, b in
           zip(jax.tree.leaves(shared), jax.tree.leaves(manual))]
  assert max(float(d.max()) for d in diffs) < 2e-3
  assert sum(int((d > 1e-6).sum()) for d in diffs) <= 5
  np.testing.assert_allclose(ms['loss_G'], mm['loss_G'], rtol=1e-5)
  # It is a different step from the default one (fresh latents for G), not a relabelling.
  default, _ = jax.jit(functools.partial(steps.train_step, cfg=cfg))(state, reals, rng)
  assert not np.allclose(jax.tree.leaves(default.g.params)[0], jax.tree.leaves(shared.g.params)[0])


@pytest.mark.parametrize('arch', ['dcgan', 'mlp'])
def test_bf16_compute_keeps_float32_params_and_tracks_the_float32_step(arch):
  """config.compute_dtype='bfloat16': matmuls/convs run in bf16 (seen in the jaxpr), params,
  optimizer state and BN statistics stay float32, and losses track the float32 step."""
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  mc = ml_collections.ConfigDict(
      {'name': arch, 'ngf': 8, 'ndf': 8, 'g_hidden': (32,), 'd_hidden': (16,), 'd_pieces': 2})
  out = {}
  for dtype in ('float32', 'bfloat16'):
    g, d = models.build_models(mc, (28, 28, 1), dtype=dtype)
    state = create_state(g, d, optax.adam(1e-3, 0.5), optax.adam(1e-3, 0.5), 16, (28, 28, 1),
                         jax.random.key(0), ema=True)
    reals = jax.random.uniform(jax.random.key(1), (1, 8, 28, 28, 1), minval=-1, maxval=1)
    step = jax.jit(functools.partial(steps.train_step, cfg=DC))
    jaxpr = str(jax.make_jaxpr(functools.partial(steps.train_step, cfg=DC))(
        state, reals, jax.random.key(2)))
    new, m = step(state, reals, jax.random.key(2))
    out[dtype] = (new, m, jaxpr)
  new, m, jaxpr = out['bfloat16']
  assert 'bf16' in jaxpr and 'bf16' not in out['float32'][2]
  for leaf in jax.tree.leaves((new.g.params, new.d.params, new.g.opt_state, new.d.opt_state,
                               new.g.batch_stats, new.ema_params)):
    if hasattr(leaf, 'dtype') and jnp.issubdtype(leaf.dtype, jnp.floating):
      assert leaf.dtype == jnp.float32, leaf.dtype
  m32 = out['float32'][1]
  for k in ('loss_D', 'loss_G'):
    assert np.isfinite(m[k])
    np.testing.assert_allclose(m[k], m32[k], rtol=3e-2)
  # bf16 rounding really changed the numbers (the option is not a no-op).
  assert float(m['loss_D']) != float(m32['loss_D'])


def test_unknown_compute_dtype_is_a_config_error():
  from gan_jax import config_base, train  # pylint: disable=g-import-not-at-top
  c = config_base.base_config()
  c.compute_dtype = 'float8'
  with pytest.raises(Exception, match=r"config.compute_dtype='float8' .*valid: float32, bfloat16, "
                     r"float16"):
    config_base.validate_config(c)


@pytest.mark.parametrize('penalty', ['r1', 'r2'])
def test_penalty_of_a_batchnorm_d_does_not_couple_the_samples(penalty):
  """The DCGAN's D has BatchNorm. Its penalty must see each sample through D alone (inference
  mode): the R1 (on reals) or R2 (on fakes) of a batch is then the mean of the penalties of its
  samples taken one at a time. In training mode BN normalises by the batch's statistics and
  couples them (the bug this guards against; a batch-of-one BN output is even constant)."""
  state = _dcgan_state()
  # Non-trivial running statistics, as after some training.
  stats = jax.tree.map(lambda v: v + 0.3 * jax.random.normal(jax.random.key(7), v.shape),
                       state.d.batch_stats)
  state = state.replace(d=state.d.replace(batch_stats=stats))
  reals = jax.random.uniform(jax.random.key(1), (4, 28, 28, 1), minval=-1, maxval=1)
  fakes = steps.generate(state, jax.random.normal(jax.random.key(2), (4, 16)), train=True,
                         use_ema=False)
  cfg = steps.StepConfig(latent_dim=16, penalty=penalty, penalty_weight=1.0)
  key = jax.random.key(3)
  whole = float(steps.d_step_on_fakes(state, reals, fakes, key, cfg)[1]['penalty'])
  singles = [float(steps.d_step_on_fakes(state, reals[i:i + 1], fakes[i:i + 1], key, cfg)[1][
      'penalty']) for i in range(4)]
  assert whole > 0 and len(set(singles)) == 4
  np.testing.assert_allclose(whole, np.mean(singles), rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# Regularisers through d_step, against closed forms: a quadratic critic (its input gradient
# differs from sample to sample, unlike a linear one's) and an affine G, so the fakes are known.

DIM = 3


class _QuadraticCritic(nn.Module):
  """D(x) = sum_j a_j x_j^2 + b_j x_j + c over x's flattened features ``[B, ...] -> [B]``;
  input gradient 2 a x + b. ``return_features`` gives the per-feature terms ``[B, d]``."""

  @nn.compact
  def __call__(self, x, train: bool = True, return_features: bool = False):
    del train
    x = x.reshape(x.shape[0], -1)
    a = self.param('a', nn.initializers.ones, (x.shape[1],))
    b = self.param('b', nn.initializers.zeros, (x.shape[1],))
    c = self.param('c', nn.initializers.zeros, ())
    features = a * jnp.square(x) + b * x
    logits = jnp.sum(features, axis=1) + c
    return (logits, features) if return_features else logits


_A = np.array([0.3, 0.8, 0.5], np.float32)
_B = np.array([0.4, -0.7, 0.2], np.float32)
_OFFSET = np.array([2.0, -1.0, 1.5], np.float32)


def _quadratic_state(lr=0.1):
  """G(z) = z + _OFFSET (an identity Dense), D the quadratic critic with a = _A, b = _B, c = 0.1;
  SGD(lr) for both."""
  g = mlp.Generator(out_shape=(DIM,), hidden=(), tanh=False)
  state = create_state(g, _QuadraticCritic(), optax.sgd(lr), optax.sgd(lr), DIM, (DIM,),
                       jax.random.key(0))
  g_params = {'Dense_0': {'kernel': jnp.eye(DIM), 'bias': jnp.asarray(_OFFSET)}}
  d_params = {'a': jnp.asarray(_A), 'b': jnp.asarray(_B), 'c': jnp.float32(0.1)}
  return state.replace(g=state.g.replace(params=g_params), d=state.d.replace(params=d_params))


def _closed_form_r(x):
  """gamma/2 mean_i ||2 a x_i + b||^2 without gamma (float64): R1 of reals, R2 of fakes."""
  g = 2 * _A.astype(np.float64) * np.asarray(x, np.float64) + _B
  return 0.5 * np.mean(np.sum(np.square(g), axis=1))


def _d_step_fakes(rng, n, cfg):
  """The fakes d_step makes from ``rng``: G(d_latents) = z + _OFFSET, computed by hand."""
  return np.asarray(steps.d_latents(rng, n, cfg), np.float64) + _OFFSET


def _flat(params):
  return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(params)])


@pytest.mark.parametrize('penalty', ['r1', 'r2'])
def test_d_step_r1_on_reals_r2_on_fakes_with_a_quadratic_critic(penalty):
  """The penalty d_step reports, and the change it makes to D's update, are R1's closed form on
  the real batch (R2's on the fake batch) -- not on the other batch, which gives a value far
  outside the tolerance."""
  state = _quadratic_state()
  real = jnp.asarray(np.random.RandomState(0).normal(-1.0, 0.5, (16, DIM)), jnp.float32)
  rng, gamma, lr = jax.random.key(11), 4.0, 0.1
  cfg = steps.StepConfig(latent_dim=DIM, loss='ns', penalty=penalty, penalty_weight=gamma)
  fake = _d_step_fakes(rng, 16, cfg)
  on_real, on_fake = gamma * _closed_form_r(real), gamma * _closed_form_r(fake)
  want = on_real if penalty == 'r1' else on_fake
  assert abs(on_real - on_fake) > 0.5 * want  # the two batches give very different penalties
  new, m = steps.d_step(state, real, rng, cfg)
  np.testing.assert_allclose(m['penalty'], want, rtol=1e-5)
  # The D update: SGD moves params by -lr * (grad of the loss + grad of the penalty). The
  # penalty's gradient w.r.t. b is gamma mean_i (2 a x_i + b) and w.r.t. a is
  # gamma mean_i 2 x_i (2 a x_i + b), at the reals (R1) or the fakes (R2); c gets none.
  plain, _ = steps.d_step(state, real, rng, dataclasses.replace(cfg, penalty='none'))
  x = np.asarray(real, np.float64) if penalty == 'r1' else fake
  grad_x = 2 * _A * x + _B
  want_da = -lr * gamma * np.mean(2 * x * grad_x, axis=0)
  want_db = -lr * gamma * np.mean(grad_x, axis=0)
  np.testing.assert_allclose(new.d.params['a'] - plain.d.params['a'], want_da, rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(new.d.params['b'] - plain.d.params['b'], want_db, rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(new.d.params['c'], plain.d.params['c'], atol=1e-7)


def test_d_step_lazy_penalty_is_scaled_by_penalty_every():
  """Lazy regularisation with penalty_every=k: at a D step that is a multiple of k the reported
  penalty, and its contribution to the update, are k times those of penalty_every=1; at the
  other steps both are zero (the update is the unregularised one)."""
  k = 4
  state = _quadratic_state()
  real = jnp.asarray(np.random.RandomState(1).normal(-1.0, 0.5, (16, DIM)), jnp.float32)
  rng = jax.random.key(12)
  cfg = steps.StepConfig(latent_dim=DIM, penalty='r1', penalty_weight=2.0)
  lazy_cfg = dataclasses.replace(cfg, penalty_every=k)
  step = jax.jit(steps.d_step, static_argnums=3)

  def at(d_step_count, c):
    s = state.replace(d=state.d.replace(step=jnp.int32(d_step_count)))
    new, m = step(s, real, rng, c)
    return _flat(new.d.params), float(m['penalty'])

  base, _ = at(0, dataclasses.replace(cfg, penalty='none'))
  eager, pen1 = at(0, cfg)
  assert pen1 > 0.1
  for count in (0, k, 3 * k):
    lazy, pen_k = at(count, lazy_cfg)
    np.testing.assert_allclose(pen_k, k * pen1, rtol=1e-6)
    np.testing.assert_allclose(lazy - base, k * (eager - base), rtol=1e-4, atol=1e-7)
  for count in (1, k - 1, k + 2):
    lazy, pen_k = at(count, lazy_cfg)
    assert pen_k == 0.0
    np.testing.assert_allclose(lazy, base, rtol=1e-6, atol=1e-7)
