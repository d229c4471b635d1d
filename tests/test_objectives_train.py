"""Every objective and every regulariser/trick builds and runs compiled steps, without NaN."""

import dataclasses
import functools

import chex
import jax
import jax.numpy as jnp
import optax
import pytest

from gan_jax import losses, penalties, steps
from gan_jax.models import dcgan, mlp
from gan_jax.state import create_state

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
