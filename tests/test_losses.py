"""Losses against closed forms at chosen logits, and the saturation of the minimax G loss.

References are written independently in numpy float64 (with ``logaddexp`` for log sigmoid so they
stay exact at extreme logits); gradients are checked against central finite differences of those
references and, for some losses, against hand-derived formulas.
"""

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
  # d/dl_real [-mean log sig(l)] = -(1 - sig(l)) / B;
  # d/dl_fake [-mean log(1 - sig(l))] = sig(l) / B.
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, -(1 - _sig(REAL)) / REAL.size, rtol=1e-5)
  np.testing.assert_allclose(gf, _sig(FAKE) / FAKE.size, rtol=1e-5)


def test_unknown_loss_lists_valid_names():
  with pytest.raises(ConfigError, match=r"config.loss='nss'.*valid: hinge, lsgan, minimax, ns, "
                     r"ragan, rsgan, wgan, wgan_gp$"):
    losses.get_loss('nss')


# ---------------------------------------------------------------------------------------------
# Objectives beyond the original GAN: numpy float64 references.


def _np_log_sig(x):
  # log sigmoid(x) = -log(1 + exp(-x)), exact in float64 for any |x|.
  return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def _np_ragan(a, b):
  return (-np.mean(_np_log_sig(a - np.mean(b))) -
          np.mean(_np_log_sig(-(b - np.mean(a)))))


# name -> (D loss, G loss), each a numpy function of float64 (real, fake).
NP_REF = {
    'minimax': (lambda r, f: -np.mean(_np_log_sig(r)) - np.mean(_np_log_sig(-f)),
                lambda r, f: np.mean(_np_log_sig(-f))),
    'ns': (lambda r, f: -np.mean(_np_log_sig(r)) - np.mean(_np_log_sig(-f)),
           lambda r, f: -np.mean(_np_log_sig(f))),
    'lsgan': (lambda r, f: 0.5 * np.mean((r - 1.0)**2) + 0.5 * np.mean(f**2),
              lambda r, f: 0.5 * np.mean((f - 1.0)**2)),
    'wgan': (lambda r, f: np.mean(f) - np.mean(r), lambda r, f: -np.mean(f)),
    'wgan_gp': (lambda r, f: np.mean(f) - np.mean(r), lambda r, f: -np.mean(f)),
    'hinge': (lambda r, f: np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f)),
              lambda r, f: -np.mean(f)),
    'rsgan': (lambda r, f: -np.mean(_np_log_sig(r - f)),
              lambda r, f: -np.mean(_np_log_sig(f - r))),
    'ragan': (_np_ragan, lambda r, f: _np_ragan(f, r)),
}

NAMES = sorted(NP_REF)
CASES = [(name, part) for name in NAMES for part in ('d', 'g')]


def _ref(name, part):
  return NP_REF[name][0 if part == 'd' else 1]


def _fn(name, part):
  obj = losses.get_loss(name)
  return obj.d if part == 'd' else obj.g


def test_every_registered_loss_has_a_reference():
  # A loss added to LOSSES without a reference here would go untested.
  assert set(NP_REF) == set(losses.LOSSES)


@pytest.mark.parametrize('name,part', CASES)
def test_closed_form_at_chosen_logits(name, part):
  got = _fn(name, part)(REAL, FAKE)
  chex.assert_shape(got, ())
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, _ref(name, part)(REAL.astype(np.float64), FAKE.astype(
      np.float64)), rtol=1e-6, atol=1e-7)


def test_closed_form_spot_values():
  # A few values by hand, so the references above are not the only source of truth.
  r, f = np.array([3.0, -1.0], np.float32), np.array([0.5, -2.0], np.float32)
  # LSGAN D: 1/2 mean([4, 4]) + 1/2 mean([0.25, 4]) = 2 + 1.0625.
  np.testing.assert_allclose(losses.lsgan_d_loss(r, f), 3.0625, rtol=1e-7)
  # LSGAN G: 1/2 mean([0.25, 9]) = 2.3125.
  np.testing.assert_allclose(losses.lsgan_g_loss(None, f), 2.3125, rtol=1e-7)
  # WGAN critic: mean(f) - mean(r) = -0.75 - 1 = -1.75; G: 0.75.
  np.testing.assert_allclose(losses.wgan_d_loss(r, f), -1.75, rtol=1e-7)
  np.testing.assert_allclose(losses.wgan_g_loss(None, f), 0.75, rtol=1e-7)
  # Hinge D: mean(relu([-2, 2])) + mean(relu([1.5, -1])) = 1 + 0.75.
  np.testing.assert_allclose(losses.hinge_d_loss(r, f), 1.75, rtol=1e-7)
  # Relativistic losses with equal real and fake logits: every comparison is sigmoid(0) = 1/2,
  # so RSGAN = log 2 and RaGAN (two terms) = 2 log 2, for D and G alike.
  c = np.full(5, 0.7, np.float32)
  for fn in (losses.rsgan_d_loss, losses.rsgan_g_loss):
    np.testing.assert_allclose(fn(c, c), np.log(2.0), rtol=1e-6)
  for fn in (losses.ragan_d_loss, losses.ragan_g_loss):
    np.testing.assert_allclose(fn(c, c), 2 * np.log(2.0), rtol=1e-6)


def _central_fd(f, x, h=1e-6):
  x = np.asarray(x, np.float64)
  out = np.zeros_like(x)
  for i in range(x.size):
    e = np.zeros_like(x)
    e.flat[i] = h
    out.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
  return out


@pytest.mark.parametrize('name,part', CASES)
def test_gradient_matches_finite_differences(name, part):
  """jax.grad (float32) vs central differences of the float64 numpy reference. The chosen logits
  stay away from the hinge's kinks at +-1, where the FD would straddle two slopes."""
  ref = _ref(name, part)
  r64, f64 = REAL.astype(np.float64), FAKE.astype(np.float64)
  gr, gf = jax.grad(_fn(name, part), argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, _central_fd(lambda r: ref(r, f64), r64), rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(gf, _central_fd(lambda f: ref(r64, f), f64), rtol=1e-5, atol=1e-7)


def test_gradients_by_hand():
  b = REAL.size
  # LSGAN D: d/dr = (r - 1)/B, d/df = f/B.
  gr, gf = jax.grad(losses.lsgan_d_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, (REAL - 1) / b, rtol=1e-6)
  np.testing.assert_allclose(gf, FAKE / b, rtol=1e-6)
  # Hinge D: -1/B where r < 1 (else 0); +1/B where f > -1 (else 0).
  gr, gf = jax.grad(losses.hinge_d_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, np.where(REAL < 1, -1.0, 0.0) / b, rtol=1e-7)
  np.testing.assert_allclose(gf, np.where(FAKE > -1, 1.0, 0.0) / b, rtol=1e-7)
  # RSGAN D: d/dr_i = -(1 - sigmoid(r_i - f_i))/B = -d/df_i.
  gr, gf = jax.grad(losses.rsgan_d_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gr, -(1 - _sig(REAL - FAKE)) / b, rtol=1e-5)
  np.testing.assert_allclose(gf, (1 - _sig(REAL - FAKE)) / b, rtol=1e-5)
  # WGAN G: d/df = -1/B and no dependence on the real logits.
  gr, gf = jax.grad(losses.wgan_g_loss, argnums=(0, 1))(REAL, FAKE)
  np.testing.assert_allclose(gf, np.full(b, -1.0 / b), rtol=1e-7)


@pytest.mark.parametrize('name,part', CASES)
@pytest.mark.parametrize('sign_r,sign_f', [(1, 1), (1, -1), (-1, 1), (-1, -1)])
def test_finite_and_exact_at_extreme_logits(name, part, sign_r, sign_f):
  """At +-1e4 every loss and gradient is finite and still equals the exact value: no
  log(sigmoid(.)) underflowing to log(0), no exp overflowing."""
  r = np.array([sign_r * 1e4, 0.5], np.float32)
  f = np.array([sign_f * 1e4, -0.5], np.float32)
  v, g = jax.value_and_grad(_fn(name, part), argnums=(0, 1))(r, f)
  assert np.isfinite(v)
  chex.assert_tree_all_finite(g)
  np.testing.assert_allclose(v, _ref(name, part)(r.astype(np.float64), f.astype(np.float64)),
                             rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('name,part', CASES)
def test_column_logits_and_bf16(name, part):
  fn = _fn(name, part)
  np.testing.assert_allclose(fn(REAL[:, None], FAKE[:, None]), fn(REAL, FAKE), rtol=1e-7)
  out = fn(jnp.asarray(REAL, jnp.bfloat16), jnp.asarray(FAKE, jnp.bfloat16))
  assert out.dtype == jnp.float32


def test_g_uses_real_flags_and_none_real_logits():
  relativistic = {'rsgan', 'ragan'}
  for name, obj in losses.LOSSES.items():
    assert obj.g_uses_real == (name in relativistic), name
    if not obj.g_uses_real:
      # The G step passes real_logits=None for these; they must not touch it.
      np.testing.assert_allclose(obj.g(None, FAKE), obj.g(REAL, FAKE), rtol=0)


def test_relativistic_g_depends_on_real_logits():
  for name in ('rsgan', 'ragan'):
    g = jax.grad(losses.get_loss(name).g, argnums=0)(REAL, FAKE)
    assert np.all(np.abs(g) > 1e-3), name


def test_rsgan_needs_paired_batches_ragan_does_not():
  with pytest.raises(ValueError, match='equal real and fake batches'):
    losses.rsgan_d_loss(REAL, FAKE[:3])
  got = losses.ragan_d_loss(REAL, FAKE[:3])
  np.testing.assert_allclose(got, _np_ragan(REAL.astype(np.float64), FAKE[:3].astype(np.float64)),
                             rtol=1e-6)


def test_wgan_gp_shares_wgan_losses_and_implies_gp():
  assert losses.LOSSES['wgan_gp'].d is losses.LOSSES['wgan'].d
  assert losses.LOSSES['wgan_gp'].g is losses.LOSSES['wgan'].g
  assert losses.PENALTY_FOR_LOSS == {'wgan_gp': 'gp'}
  from gan_jax import penalties
  for loss_name, penalty_name in losses.PENALTY_FOR_LOSS.items():
    assert loss_name in losses.LOSSES
    assert penalty_name in penalties.PENALTIES
