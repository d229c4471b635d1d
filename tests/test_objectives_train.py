"""Every objective and every regulariser/trick builds and runs compiled steps, without NaN; and
the tricks do what their definitions say, seen through spy nets: instance noise on both D inputs,
feature matching against the real-feature mean, a fresh key for each of the n_critic D steps."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import losses, penalties, steps
from gan_jax.models import dcgan, mlp
from gan_jax.state import create_state
from test_steps import _A, _B, _OFFSET, DIM, _QuadraticCritic, _quadratic_state

BASE = steps.StepConfig(latent_dim=2)


def _toy_state(spectral_norm=False, minibatch_std=False):
  g = mlp.Generator(out_shape=(2,), hidden=(16, 16), tanh=False)
  d = mlp.Discriminator(hidden=(16, 16), pieces=1, input_dropout=0.0, dropout=0.0,
                        spectral_norm=spectral_norm, minibatch_std=minibatch_std)
  return create_state(g, d, optax.adam(1e-3, 0.5), optax.adam(1e-3, 0.5), 2, (2,),
                      jax.random.key(0), ema=True)


def _run(state, cfg, n=3):
  f = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  for i in range(n):
    reals = jax.random.normal(jax.random.key(100 + i), (cfg.n_critic, 32, 2))
    state, m = f(state, reals, jax.random.key(i))
  chex.assert_tree_all_finite((state.g.params, state.d.params, m))
  return state, m


@pytest.mark.parametrize('loss', sorted(losses.LOSSES))
def test_every_objective_runs(loss):
  cfg = dataclasses.replace(BASE, loss=loss, penalty=losses.PENALTY_FOR_LOSS.get(loss, 'none'),
                            weight_clip=0.01 if loss == 'wgan' else 0.0)
  state, m = _run(_toy_state(), cfg)
  if loss == 'wgan':  # clipping holds after the update
    assert max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(state.d.params)) <= 0.01
  if loss == 'wgan_gp':
    assert float(m['penalty']) > 0


@pytest.mark.parametrize('penalty', sorted(set(penalties.PENALTIES) - {'none'}))
def test_every_penalty_runs_and_is_reported(penalty):
  _, m = _run(_toy_state(), dataclasses.replace(BASE, penalty=penalty, penalty_weight=1.0))
  assert float(m['penalty']) > 0


def test_lazy_penalty_only_every_k_d_steps():
  cfg = dataclasses.replace(BASE, penalty='r1', penalty_weight=1.0, penalty_every=2)
  state, m = _run(_toy_state(), cfg, n=1)  # D step 0: applied (x2)
  assert float(m['penalty']) > 0
  _, m = _run(state, cfg, n=1)  # D step 1: skipped
  assert float(m['penalty']) == 0


@pytest.mark.parametrize('trick', [
    dict(label_smoothing=0.1), dict(instance_noise=0.5, instance_noise_steps=10),
    dict(feature_matching=True), dict(n_critic=3), 'spectral_norm', 'minibatch_std'])
def test_tricks_run(trick):
  if isinstance(trick, str):
    state, cfg = _toy_state(**{trick: True}), BASE
  else:
    state, cfg = _toy_state(), dataclasses.replace(BASE, **trick)
  state, _ = _run(state, cfg)
  if trick == 'spectral_norm':
    assert state.d.batch_stats  # power-iteration vectors live in the state (and checkpoints)


def test_label_smoothing_changes_only_the_real_term():
  real, fake = jnp.array([3.0, 1.0]), jnp.array([-2.0, 0.5])
  cfg = dataclasses.replace(BASE, label_smoothing=0.1)
  smoothed = steps.d_objective(cfg, losses.LOSSES['ns'], real, fake)
  want = (jnp.mean(-0.9 * jax.nn.log_sigmoid(real) - 0.1 * jax.nn.log_sigmoid(-real))
          - jnp.mean(jax.nn.log_sigmoid(-fake)))
  chex.assert_trees_all_close(smoothed, want, rtol=1e-6)


def test_instance_noise_anneals_to_zero():
  cfg = dataclasses.replace(BASE, instance_noise=0.4, instance_noise_steps=100)
  chex.assert_trees_all_close(steps.noise_std(cfg, jnp.array(0)), 0.4)
  chex.assert_trees_all_close(steps.noise_std(cfg, jnp.array(50)), 0.2)
  chex.assert_trees_all_close(steps.noise_std(cfg, jnp.array(300)), 0.0)


@pytest.mark.slow
@pytest.mark.parametrize('loss', sorted(losses.LOSSES))
def test_every_objective_trains_the_mnist_dcgan_smoke_without_nan(loss):
  g, d = dcgan.Generator(ngf=8), dcgan.Discriminator(ndf=8)
  state = create_state(g, d, optax.adam(2e-4, 0.5), optax.adam(2e-4, 0.5), 16, (28, 28, 1),
                       jax.random.key(0), ema=True)
  cfg = dataclasses.replace(steps.StepConfig(latent_dim=16), loss=loss,
                            penalty=losses.PENALTY_FOR_LOSS.get(loss, 'none'),
                            weight_clip=0.01 if loss == 'wgan' else 0.0)
  f = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  for i in range(6):
    reals = jax.random.uniform(jax.random.key(i), (1, 8, 28, 28, 1), minval=-1, maxval=1)
    state, m = f(state, reals, jax.random.key(i))
  chex.assert_tree_all_finite((state.g.params, state.d.params, m))


def test_every_objective_with_every_regulariser_runs_one_step():
  """The cross product through the config schema: validate_config -> step_config -> one step.

  The 48 steps run op by op (``jax.disable_jit``): 48 separate compiles would cost ~90 s of
  the CI budget. Each objective and each penalty also runs compiled in the tests above.
  """
  import itertools
  import os
  from conftest import REPO
  from test_configs import _load
  from gan_jax import config_base
  from gan_jax import run as run_lib
  base = _load(os.path.join(REPO, 'experiments', 'toy2d.py'), 'smoke')
  combos = list(itertools.product(sorted(losses.LOSSES), sorted(penalties.PENALTIES)))
  # One hidden layer each and no EMA: 48 compiles, so keep each program small.
  state0 = create_state(mlp.Generator(out_shape=(2,), hidden=(8,), tanh=False),
                        mlp.Discriminator(hidden=(8,), pieces=1, input_dropout=0.0, dropout=0.0),
                        optax.adam(1e-3, 0.5), optax.adam(1e-3, 0.5), 2, (2,), jax.random.key(0))
  for loss, penalty in combos:
    c = base.copy_and_resolve_references()
    c.loss, c.penalty, c.penalty_weight = loss, penalty, 1.0
    config_base.validate_config(c)
    cfg = run_lib.step_config(c)
    reals = jax.random.normal(jax.random.key(1), (cfg.n_critic, 32, 2))
    with jax.disable_jit():
      _, m = steps.train_step(state0, reals, jax.random.key(2), cfg)
    # One-sided GP is 0 while every gradient norm is below 1, which a small fresh D has.
    if penalty not in ('none', 'gp_one_sided') or (loss == 'wgan_gp' and penalty == 'none'):
      assert float(m['penalty']) > 0, (loss, penalty)
    assert float(m['penalty']) >= 0 and jnp.isfinite(m['loss_D']) and jnp.isfinite(m['loss_G'])
  assert len(combos) == len(losses.LOSSES) * len(penalties.PENALTIES) == 48


# ----------------------------------------------------------------------------------------------
# The tricks against their definitions, with spy nets.


def _zero_g_square_d(dim=2, batch=512):
  """G(z) = 0 (zero Dense) and D(x) = ||x||^2 (quadratic critic, a = 1, b = c = 0): with real
  and fake inputs 0, D's outputs are the squared norms of the instance noise it was given."""
  g = mlp.Generator(out_shape=(dim,), hidden=(), tanh=False)
  state = create_state(g, _QuadraticCritic(), optax.sgd(0.1), optax.sgd(0.1), dim, (dim,),
                       jax.random.key(0))
  zero_g = jax.tree.map(jnp.zeros_like, state.g.params)
  return state.replace(g=state.g.replace(params=zero_g)), jnp.zeros((batch, dim))


def _expected_sigmoid_of_chi2(sigma, dim, n=400_000):
  """E[sigmoid(sigma^2 ||u||^2)], u ~ N(0, I_dim), by Monte Carlo (numpy, float64)."""
  u = np.random.RandomState(0).normal(size=(n, dim))
  return float(np.mean(1 / (1 + np.exp(-sigma**2 * np.sum(u * u, axis=1)))))


@pytest.mark.parametrize('g_step_count,sigma', [(0, 1.0), (5, 0.5)])
def test_instance_noise_reaches_the_real_and_the_fake_inputs_of_d(g_step_count, sigma):
  """Sønderby et al.: noise on *every* D input. With zero reals and fakes and D(x) = ||x||^2,
  D_real = mean sigmoid(||n_real||^2) is 0.5 exactly without noise on the reals and
  E[sigmoid(sigma^2 chi2_2)] with it; likewise D_fake. The std anneals from 1 to 0 over 10 G
  steps (0.5 at step 5, 0 from step 10 on)."""
  state, zeros = _zero_g_square_d()
  state = state.replace(g=state.g.replace(step=jnp.int32(g_step_count)))
  cfg = dataclasses.replace(BASE, instance_noise=1.0, instance_noise_steps=10)
  _, m = steps.d_step(state, zeros, jax.random.key(1), cfg)
  want = _expected_sigmoid_of_chi2(sigma, 2)
  assert want > 0.6
  # 512 samples of a sigmoid in [0.5, 1): standard error below 0.01.
  np.testing.assert_allclose(m['D_real'], want, atol=0.03)
  np.testing.assert_allclose(m['D_fake'], want, atol=0.03)
  assert float(m['D_real']) != float(m['D_fake'])  # independent draws for the two batches
  done = state.replace(g=state.g.replace(step=jnp.int32(10)))
  _, m = steps.d_step(done, zeros, jax.random.key(1), cfg)
  assert float(m['D_real']) == float(m['D_fake']) == 0.5


def test_instance_noise_reaches_the_real_input_of_the_g_step():
  """The G step's D pass on the reals (feature matching here) gets noise too. Features
  f(x) = x^2 of zero reals and fakes: with noise on both, ||E f(real) - E f(fake)||^2 is the
  square of a difference of two means of chi2_1 draws, ~2 * 2 * 2/512 = 0.016; with noise on
  the fakes only it is ||E f(fake)||^2 ~ 2; without noise 0."""
  state, zeros = _zero_g_square_d()
  cfg = dataclasses.replace(BASE, feature_matching=True, instance_noise=1.0)
  z = jax.random.normal(jax.random.key(2), zeros.shape)
  _, m = steps.g_step_on_latents(state, z, jax.random.key(3), cfg, real=zeros)
  assert 0 < float(m['loss_G']) < 0.2
  _, m = steps.g_step_on_latents(state, z, jax.random.key(3),
                                 dataclasses.replace(cfg, instance_noise=0.0), real=zeros)
  assert float(m['loss_G']) == 0.0


def test_feature_matching_loss_and_gradient_match_the_definition():
  """Salimans et al., 2016: G minimises L = ||E f(x) - E f(G(z))||^2 with f D's last features,
  here f_j(x) = a_j x_j^2 + b_j x_j of the quadratic critic and G(z) = z W + o (W = I). By hand:
  dL/do_j = 2 (m_fake_j - m_real_j) mean_i (2 a_j x_ij + b_j) and
  dL/dW_kj = 2 (m_fake_j - m_real_j) mean_i (2 a_j x_ij + b_j) z_ik; SGD(lr) moves by -lr
  times them."""
  lr = 0.1
  state = _quadratic_state(lr)
  rs = np.random.RandomState(4)
  real = rs.normal(-1.0, 0.5, (16, DIM))
  z = rs.normal(size=(16, DIM))
  cfg = steps.StepConfig(latent_dim=DIM, feature_matching=True)
  new, m = steps.g_step_on_latents(state, jnp.asarray(z, jnp.float32), jax.random.key(5), cfg,
                                   real=jnp.asarray(real, jnp.float32))
  fake = z + _OFFSET
  f = lambda x: _A * x**2 + _B * x
  diff = np.mean(f(fake), 0) - np.mean(f(real), 0)
  want_loss = np.sum(diff**2)
  assert want_loss > 1.0 and abs(want_loss - np.sum(np.mean(f(fake), 0)**2)) > 1.0
  np.testing.assert_allclose(m['loss_G'], want_loss, rtol=1e-5)
  slope = 2 * _A * fake + _B  # df_j/dx_j at each fake [16, DIM]
  grad_o = 2 * diff * np.mean(slope, 0)
  grad_w = 2 * diff[None, :] * np.mean(slope[:, None, :] * z[:, :, None], 0)
  np.testing.assert_allclose(new.g.params['Dense_0']['bias'], _OFFSET - lr * grad_o, rtol=1e-4,
                             atol=1e-6)
  np.testing.assert_allclose(new.g.params['Dense_0']['kernel'], np.eye(DIM) - lr * grad_w,
                             rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_equal(new.d, state.d)


def _recorder(n):
  """An optax transformation that records every gradient it is given (``state['grads']``,
  stacked ``[n, ...]`` in update order) and updates nothing: a spy on what each D step saw."""
  def init(params):
    return {'count': jnp.zeros((), jnp.int32),
            'grads': jax.tree.map(lambda p: jnp.zeros((n,) + p.shape, p.dtype), params)}

  def update(grads, state, params=None):
    del params
    recorded = jax.tree.map(lambda buf, g: buf.at[state['count']].set(g), state['grads'], grads)
    return jax.tree.map(jnp.zeros_like, grads), {'count': state['count'] + 1, 'grads': recorded}

  return optax.GradientTransformation(init, update)


def _spy_critic_state(n_critic, g_kernel, g_step_count):
  """G(z) = z g_kernel (no bias) at G step ``g_step_count``, a linear critic D(x) = w.x + c
  whose optimizer records its gradients. Under the WGAN loss E D(fake) - E D(real),
  dL/dw = mean(fake_in) - mean(real_in) whatever w is: each D step's gradient is a fingerprint
  of the batches it was given."""
  g = mlp.Generator(out_shape=(2,), hidden=(), tanh=False)
  d = mlp.Discriminator(hidden=(), pieces=1, input_dropout=0.0, dropout=0.0)
  state = create_state(g, d, optax.sgd(0.0), _recorder(n_critic), 2, (2,), jax.random.key(0))
  g_params = {'Dense_0': {'kernel': g_kernel, 'bias': jnp.zeros((2,))}}
  return state.replace(g=state.g.replace(params=g_params, step=jnp.int32(g_step_count)))


def _d_grads(state):
  return np.asarray(state.d.opt_state['grads']['Dense_0']['kernel'])[..., 0]  # [n, 2]


def test_each_of_the_n_critic_d_steps_draws_its_own_latents_noise_and_batch():
  """The n_critic D steps of one train step (Goodfellow et al., alg. 1: k D steps, each on a
  fresh minibatch of latents and of data) see different latents, different instance noise and
  their own slice of the real batches, as the spy critic's recorded gradients show. One
  compiled step: the noise std anneals from 1 to 0 over 10 G steps, so at G step 10 there is
  none."""
  n_critic, batch = 3, 64
  cfg = dataclasses.replace(BASE, loss='wgan', n_critic=n_critic, instance_noise=1.0,
                            instance_noise_steps=10)
  step = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  # Latents: G(z) = z, the same real batch for every D step, no noise. dL/dw = mean(z_k) -
  # mean(real), so mean(z_k) = dL/dw + mean(real): ~N(0, 1/64) each, and all different.
  same = jnp.broadcast_to(jax.random.normal(jax.random.key(1), (1, batch, 2)), (n_critic, batch, 2))
  new, _ = step(_spy_critic_state(n_critic, jnp.eye(2), 10), same, jax.random.key(2))
  z_means = _d_grads(new) + np.mean(np.asarray(same[0]), 0)
  assert np.all(np.abs(z_means) < 5 / np.sqrt(batch))
  assert len({tuple(r) for r in z_means.tolist()}) == n_critic, z_means
  # Instance noise: G(z) = 0 and zero reals; dL/dw = mean(noise_fake_k) - mean(noise_real_k).
  zeros = jnp.zeros((n_critic, batch, 2))
  new, _ = step(_spy_critic_state(n_critic, jnp.zeros((2, 2)), 0), zeros, jax.random.key(2))
  noise_means = _d_grads(new)
  assert np.all(noise_means != 0) and np.all(np.abs(noise_means) < 5 * np.sqrt(2 / batch))
  assert len({tuple(r) for r in noise_means.tolist()}) == n_critic, noise_means
  # Real batches: G(z) = 0, no noise, a different batch per D step: dL/dw = -mean(reals[k]).
  reals = jax.random.normal(jax.random.key(3), (n_critic, batch, 2))
  new, _ = step(_spy_critic_state(n_critic, jnp.zeros((2, 2)), 10), reals, jax.random.key(2))
  np.testing.assert_allclose(_d_grads(new), -np.mean(np.asarray(reals), 1), rtol=1e-5, atol=1e-7)
