"""The mode-seeking regulariser (gan_jax/diversity.py): its value and gradient against the
closed form, the paired labels of the fakes, and its weight in both G steps (plain and shared
forward), checked against the regulariser's own gradient with spy optimizers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config_base, diversity, steps
from gan_jax.errors import ConfigError
from gan_jax.models import mlp
from gan_jax.state import create_state
from spy_optimizers import last_gradient


def test_ratio_and_loss_match_the_closed_form():
  # 4 fakes of 3 pixels: pairs (0, 2) and (1, 3); latents of 2 entries.
  fake = np.array([[0., 1., 2.], [1., 1., 1.], [1., -1., 2.], [1., 3., 1.]])
  z = np.array([[0., 0.], [1., 1.], [2., 0.], [1., -3.]])
  # |f0 - f2| = 1 + 2 + 0 = 3, |f1 - f3| = 0 + 2 + 0 = 2: mean over 2 x 3 entries = 5/6.
  # |z0 - z2| = 2 + 0, |z1 - z3| = 0 + 4: mean over 2 x 2 entries = 6/4.
  want = (5 / 6) / (6 / 4)
  np.testing.assert_allclose(diversity.ratio(fake, z), want, rtol=1e-6)
  np.testing.assert_allclose(diversity.mode_seeking_loss(fake, z), 1 / (want + 1e-5), rtol=1e-6)
  # An odd fifth fake is in no pair.
  np.testing.assert_allclose(diversity.ratio(np.vstack([fake, 9 * np.ones(3)]),
                                             np.vstack([z, 9 * np.ones(2)])), want, rtol=1e-6)


def test_gradient_matches_the_closed_form():
  """L = 1 / (r + eps), r = A / Z, A = mean |f_i - f_{i+h}|: dL/df_i = -sign(f_i - f_{i+h}) /
  (h P Z (r + eps)^2) and the opposite for f_{i+h} (P pixels per image)."""
  rs = np.random.RandomState(0)
  fake, z = rs.normal(size=(6, 5)), rs.normal(size=(6, 4))
  h, p = 3, 5
  zbar = np.mean(np.abs(z[:h] - z[h:]))
  r = np.mean(np.abs(fake[:h] - fake[h:])) / zbar
  s = np.sign(fake[:h] - fake[h:])
  top = -s / (h * p * zbar * (r + 1e-5)**2)
  want = np.vstack([top, -top])
  got = jax.grad(diversity.mode_seeking_loss)(jnp.asarray(fake, jnp.float32),
                                              jnp.asarray(z, jnp.float32))
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # Pushing the pairs apart lowers the loss: G is rewarded for diverse images.
  assert diversity.mode_seeking_loss(fake * 2, z) < diversity.mode_seeking_loss(fake, z)


@pytest.mark.parametrize('batch', [8, 9])
def test_with_the_regulariser_the_fakes_come_in_pairs_of_one_label(batch):
  cfg = steps.StepConfig(num_classes=50)
  plain = np.asarray(steps.fake_labels(jax.random.key(3), batch, cfg))
  paired = np.asarray(steps.fake_labels(jax.random.key(3), batch,
                                        dataclasses.replace(cfg, mode_seeking=1.0)))
  h = batch // 2
  assert not np.array_equal(plain[h:2 * h], plain[:h])
  np.testing.assert_array_equal(paired[:h], plain[:h])  # the same draw, the second half copied
  np.testing.assert_array_equal(paired[h:2 * h], plain[:h])
  np.testing.assert_array_equal(paired[2 * h:], plain[2 * h:])


def test_config_refuses_a_negative_weight():
  c = config_base.base_config()
  c.mode_seeking = -0.5
  with pytest.raises(ConfigError, match=r'config.mode_seeking=-0.5 must be a finite number >= 0'):
    config_base.validate_config(c)


# ----------------------------------------------------------------------------------------------
# In the G steps: G(z) = z W + b (4 pixels), a linear critic, optimizers that record gradients.


def _state():
  g = mlp.Generator(out_shape=(4,), hidden=(), tanh=False)
  d = mlp.Discriminator(hidden=(), pieces=1, input_dropout=0.0, dropout=0.0)
  return create_state(g, d, last_gradient(), last_gradient(), 3, (4,), jax.random.key(0))


def _g_grad(state):
  return state.g.opt_state['grads']


def _ms_grad(state, z):
  """The gradient in G's params of the regulariser alone, and its value, on latents z."""
  f = lambda p: diversity.mode_seeking_loss(state.g.apply_fn({'params': p}, z), z)
  return jax.value_and_grad(f)(state.g.params)


@pytest.mark.parametrize('lam', [0.5, 2.0])
def test_the_g_step_adds_lambda_times_the_regulariser_and_its_gradient(lam):
  state = _state()
  z = jax.random.normal(jax.random.key(1), (16, 3))
  cfg = steps.StepConfig(latent_dim=3)
  base, m0 = steps.g_step_on_latents(state, z, jax.random.key(2), cfg)
  reg, m1 = steps.g_step_on_latents(state, z, jax.random.key(2),
                                    dataclasses.replace(cfg, mode_seeking=lam))
  value, grad = _ms_grad(state, z)
  np.testing.assert_allclose(m1['loss_G'] - m0['loss_G'], lam * value, rtol=1e-4)
  jax.tree.map(lambda a, b, g: np.testing.assert_allclose(a - b, lam * g, rtol=1e-4, atol=1e-6),
               _g_grad(reg), _g_grad(base), grad)


def test_the_shared_forward_step_adds_it_on_the_d_steps_latents():
  """One G forward shared by D and G: the regulariser is of that forward's fakes and latents
  (``d_latents`` of the step's D key). D's optimizer records and moves nothing, so D is the
  same for both runs and only the regulariser separates them."""
  state = _state()
  cfg = steps.StepConfig(latent_dim=3, share_g_forward=True)
  reals = jax.random.normal(jax.random.key(4), (1, 16, 4))
  rng = jax.random.key(5)
  base, m0 = steps.train_step(state, reals, rng, cfg)
  reg, m1 = steps.train_step(state, reals, rng, dataclasses.replace(cfg, mode_seeking=1.0))
  d_key = jax.random.split(jax.random.fold_in(rng, 0), 1)[0]
  value, grad = _ms_grad(state, steps.d_latents(d_key, 16, cfg))
  np.testing.assert_allclose(m1['loss_G'] - m0['loss_G'], value, rtol=1e-4)
  jax.tree.map(lambda a, b, g: np.testing.assert_allclose(a - b, g, rtol=1e-4, atol=1e-6),
               _g_grad(reg), _g_grad(base), grad)
