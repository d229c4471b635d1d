"""Losses against closed forms at chosen logits, and the saturation of the minimax G loss."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses
from gan_jax.errors import ConfigError

REAL = np.array([2.0, -1.0, 0.5, 3.0], np.float32)
FAKE = np.array([-2.0, 0.0, 1.5, -0.5], np.float32)


def _sig(x):
  return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def test_minimax_d_loss_is_bce():
  want = -np.mean(np.log(_sig(REAL))) - np.mean(np.log(1.0 - _sig(FAKE)))
  np.testing.assert_allclose(losses.minimax_d_loss(REAL, FAKE), want, rtol=1e-6)


def test_value_at_equilibrium_is_minus_log_4():
  # D = 1/2 everywhere (logit 0): V = log(1/2) + log(1/2) = -log 4, not log(0.5).
  zeros = jnp.zeros(16)
  np.testing.assert_allclose(losses.value(zeros, zeros), -np.log(4.0), rtol=1e-6)
  assert not np.isclose(losses.value(zeros, zeros), np.log(0.5))


def test_g_losses_closed_form():
  np.testing.assert_allclose(losses.minimax_g_loss(REAL, FAKE), np.mean(np.log(1 - _sig(FAKE))),
                             rtol=1e-6)
  np.testing.assert_allclose(losses.ns_g_loss(REAL, FAKE), -np.mean(np.log(_sig(FAKE))), rtol=1e-6)


def test_losses_accept_column_logits_and_bf16():
  col = losses.minimax_d_loss(REAL[:, None], FAKE[:, None])
  np.testing.assert_allclose(col, losses.minimax_d_loss(REAL, FAKE), rtol=1e-7)
  assert losses.ns_g_loss(None, jnp.asarray(FAKE, jnp.bfloat16)).dtype == jnp.float32


@pytest.mark.parametrize('logit', [-5.0, -10.0, -20.0])
def test_saturation(logit):
  """At a confident D (D(G(z)) = sigmoid(l) -> 0), d loss/d logit is -D(G(z)) for the minimax G
  loss (vanishes) and -(1 - D(G(z))) for the non-saturating loss (about -1)."""
  fake = jnp.array([logit])
  g_mm = jax.grad(lambda f: losses.minimax_g_loss(None, f))(fake)[0]
  g_ns = jax.grad(lambda f: losses.ns_g_loss(None, f))(fake)[0]
  d = _sig(np.array(logit))
  np.testing.assert_allclose(g_mm, -d, rtol=1e-5)
  np.testing.assert_allclose(g_ns, -(1 - d), rtol=1e-5)
  assert abs(g_mm) < 7e-3 and abs(g_ns) > 0.99


def test_losses_finite_at_extreme_logits():
  big = jnp.array([1e4, -1e4])
  for name, obj in losses.LOSSES.items():
    for fn in (obj.d, obj.g):
      v, g = jax.value_and_grad(fn, argnums=(0, 1))(big, -big)
      assert np.isfinite(v), name
      chex.assert_tree_all_finite(g)


def test_gradient_of_d_loss_matches_hand_derivation():
  # d/dl_real [-mean log sig(l)] = -(1 - sig(l)) / B ; d/dl_fake [-mean log(1 - sig(l))] = sig(l) / B
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, -(1 - _sig(REAL)) / REAL.size, rtol=1e-5)
  np.testing.assert_allclose(gf, _sig(FAKE) / FAKE.size, rtol=1e-5)


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ConfigError, match=r"config.loss='nss'.*valid: minimax, ns"):
    losses.get_loss('nss')
