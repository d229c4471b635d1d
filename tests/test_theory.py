"""The theory the losses rest on, checked numerically.

* Goodfellow et al., 2014, prop. 1: for fixed G the D minimising the minimax D loss is
  D*(x) = p(x) / (p(x) + q(x)) (p the data density, q the generator's).
* Theorem 1 there: V(D*, G) = -log 4 + 2 JSD(p || q), so -log 4 at p = q.
* Section 3: the minimax G loss saturates when D is confident; the non-saturating one does not.
* Miyato et al., 2018: a spectrally normalised layer has top singular value 1 (flax's
  ``nn.SpectralNorm``, the implementation the models use).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import special

from gan_jax import losses

# ---------------------------------------------------------------------------------------------
# Optimal discriminator.

GRID = np.linspace(-4.0, 4.0, 40)


def _discrete_gaussian(mu, sigma):
  p = np.exp(-0.5 * ((GRID - mu) / sigma)**2)
  return p / p.sum()


def _adam_fit(loss_fn, params, lr, steps, data_fn=None, key=None):
  """Minimises loss_fn(params[, batch]) with Adam, all steps in one jitted scan."""
  opt = optax.adam(lr)

  @jax.jit
  def run(params, key):
    def step(carry, k):
      params, state = carry
      args = () if data_fn is None else (data_fn(k),)
      grads = jax.grad(loss_fn)(params, *args)
      updates, state = opt.update(grads, state)
      return (optax.apply_updates(params, updates), state), None

    keys = jax.random.split(key, steps)
    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), keys)
    return params

  return run(params, jax.random.key(0) if key is None else key)


DISCRETE_TOL = 1e-3


def test_optimal_discriminator_discrete():
  """Free per-bin logits l_i trained on the exact expected minimax D loss
  sum_i p_i (-log sigmoid(l_i)) + q_i (-log sigmoid(-l_i)) reach sigmoid(l_i) = p_i/(p_i+q_i)."""
  p, q = _discrete_gaussian(-1.0, 1.0), _discrete_gaussian(1.0, 1.5)
  assert np.all(p > 0) and np.all(q > 0)
  pj, qj = jnp.asarray(p, jnp.float32), jnp.asarray(q, jnp.float32)

  def expected_d_loss(logits):
    return -jnp.sum(pj * jax.nn.log_sigmoid(logits) + qj * jax.nn.log_sigmoid(-logits))

  logits = _adam_fit(expected_d_loss, jnp.zeros(GRID.size), lr=0.05, steps=3000)
  d_star = p / (p + q)
  err = np.max(np.abs(np.asarray(jax.nn.sigmoid(logits), np.float64) - d_star))
  print(f'\ndiscrete D*: max |sigmoid(l_i) - p_i/(p_i+q_i)| = {err:.2e} (tol {DISCRETE_TOL})')
  assert err < DISCRETE_TOL
  # The optimum spans confident and unsure bins, so this is not a near-constant target.
  assert d_star.min() < 0.01 and d_star.max() > 0.8


class _MLP(nn.Module):

  @nn.compact
  def __call__(self, x):
    x = nn.tanh(nn.Dense(32)(x))
    x = nn.tanh(nn.Dense(32)(x))
    return nn.Dense(1)(x)[:, 0]


SAMPLED_TOL = 0.05


def test_optimal_discriminator_sampled():
  """An MLP trained with ``losses.minimax_d_loss`` on minibatches from p = N(-1, 1) (real) and
  q = N(1, 1) (fake) approaches D*(x) = p/(p+q) = sigmoid(log p - log q) = sigmoid(-2x)."""
  mlp = _MLP()
  params = mlp.init(jax.random.key(0), jnp.zeros((1, 1)))
  batch = 512

  def data(key):
    kr, kf = jax.random.split(key)
    return (-1.0 + jax.random.normal(kr, (batch, 1)), 1.0 + jax.random.normal(kf, (batch, 1)))

  def loss(params, real_fake):
    real, fake = real_fake
    return losses.minimax_d_loss(mlp.apply(params, real), mlp.apply(params, fake))

  params = _adam_fit(loss, params, lr=3e-3, steps=3000, data_fn=data, key=jax.random.key(1))
  # [-2, 2]: one std beyond either mean, where both densities have mass.
  xs = np.linspace(-2.0, 2.0, 41)
  d = np.asarray(jax.nn.sigmoid(mlp.apply(params, jnp.asarray(xs[:, None], jnp.float32))))
  d_star = special.expit(-2.0 * xs)
  err = np.max(np.abs(d - d_star))
  print(f'\nsampled D* (MLP): max |D(x) - p/(p+q)| on [-2, 2] = {err:.3f} (tol {SAMPLED_TOL})')
  assert err < SAMPLED_TOL


# ---------------------------------------------------------------------------------------------
# Value at the optimum.


def _value_at_optimum(p, q):
  d_star = p / (p + q)
  return np.sum(p * np.log(d_star)) + np.sum(q * np.log1p(-d_star))


def _jsd(p, q):
  m = 0.5 * (p + q)
  return 0.5 * np.sum(special.rel_entr(p, m)) + 0.5 * np.sum(special.rel_entr(q, m))


@pytest.mark.parametrize('seed', range(5))
def test_value_at_optimum_is_jsd(seed):
  rng = np.random.RandomState(seed)
  p, q = rng.dirichlet(np.ones(40)), rng.dirichlet(np.ones(40))
  v, jsd = _value_at_optimum(p, q), _jsd(p, q)
  assert 0.05 < jsd < np.log(2)  # distinct p, q: a non-trivial JSD
  np.testing.assert_allclose(v, -np.log(4) + 2 * jsd, rtol=0, atol=1e-6)


def test_value_at_optimum_with_losses_value():
  """``losses.value`` is a sample mean; with p and q multiples of 1/N, N logits holding bin i
  n_i times give the exact expectation. At D*, logit(D*) = log p - log q."""
  rng = np.random.RandomState(7)
  n = 400
  counts_p = rng.multinomial(n - 20, np.ones(20) / 20) + 1
  counts_q = rng.multinomial(n - 20, np.ones(20) / 20) + 1
  p, q = counts_p / n, counts_q / n
  logit_star = np.log(p) - np.log(q)
  real = np.repeat(logit_star, counts_p).astype(np.float32)
  fake = np.repeat(logit_star, counts_q).astype(np.float32)
  np.testing.assert_allclose(losses.value(real, fake), -np.log(4) + 2 * _jsd(p, q), rtol=1e-5)
  # Any other D does worse for D (lower value): D* is the maximiser.
  assert losses.value(real + 0.3, fake + 0.3) < losses.value(real, fake)


def test_value_at_equal_densities_is_minus_log_4():
  p = np.random.RandomState(0).dirichlet(np.ones(40))
  d_star = p / (p + p)
  np.testing.assert_array_equal(d_star, 0.5)
  v = _value_at_optimum(p, p)
  np.testing.assert_allclose(v, -np.log(4), rtol=1e-12)
  np.testing.assert_allclose(v, -1.3862943611, rtol=1e-9)
  assert not np.isclose(v, np.log(0.5))  # the classic slip: log(1/2) is only one of two terms
  assert _jsd(p, p) == 0.0


# ---------------------------------------------------------------------------------------------
# Saturation of the minimax G loss.


@pytest.mark.parametrize('logit', [-10.0, -4.0])
def test_saturation_through_a_generator(logit):
  """G(z) = theta z, D(x) = sigmoid(w x + b) with D confidently rejecting the fake:
  dL/dtheta = dL/dl * w z with dL/dl = -sigmoid(l) (minimax) or -(1 - sigmoid(l)) (NS), so the
  minimax gradient is sigmoid(l)/(1 - sigmoid(l)) = e^l times the NS one."""
  z, theta, w = jnp.array([1.0]), 2.0, 1.5
  b = logit - w * theta * 1.0  # l = w theta z + b

  def g_loss(fn):
    return lambda theta: fn(None, w * (theta * z) + b)

  g_mm = jax.grad(g_loss(losses.minimax_g_loss))(theta)
  g_ns = jax.grad(g_loss(losses.ns_g_loss))(theta)
  s = special.expit(logit)
  np.testing.assert_allclose(g_mm, -s * w, rtol=1e-5)
  np.testing.assert_allclose(g_ns, -(1 - s) * w, rtol=1e-5)
  # Same direction (both raise D(G(z))), magnitude e^l apart.
  assert np.sign(g_mm) == np.sign(g_ns)
  np.testing.assert_allclose(g_mm / g_ns, np.exp(logit), rtol=1e-4)
  if logit == -10.0:
    assert abs(g_mm) < 1e-4 and abs(g_ns) > 1.49


# ---------------------------------------------------------------------------------------------
# Spectral normalisation (flax.linen.SpectralNorm).
#
# flax keeps, in the 'batch_stats' collection under the SpectralNorm module's scope, the power
# iteration's left vector ``<layer>/kernel/u`` [1, out] and its estimate ``<layer>/kernel/sigma``;
# the normalised kernel W / sigma is never stored, it is recomputed on every call from the raw
# kernel in 'params'. Each call runs ``n_steps`` power iterations from the stored u and, with
# ``update_stats=True`` and mutable=['batch_stats'], writes u and sigma back, so repeated
# training calls refine the estimate. Kernels of rank > 2 are reshaped to [-1, out], i.e.
# [kh*kw*cin, cout] for a conv.

SN_TOL = 1e-2


class _SNDense(nn.Module):
  """Used as a model would: the wrapped layer's params stay under its own name ('Dense_0'),
  the power-iteration state goes to batch_stats['SpectralNorm_0']['Dense_0/kernel/{u,sigma}']."""

  @nn.compact
  def __call__(self, x, update_stats):
    return nn.SpectralNorm(nn.Dense(8, use_bias=False), n_steps=1)(x, update_stats=update_stats)


class _SNConv(nn.Module):

  @nn.compact
  def __call__(self, x, update_stats):
    conv = nn.Conv(6, (3, 3), padding='VALID', use_bias=False)
    return nn.SpectralNorm(conv, n_steps=1)(x, update_stats=update_stats)


def _power_iterate(module, x, calls):
  # init draws u from the 'params' rng.
  variables = module.init(jax.random.key(0), x, update_stats=False)

  @jax.jit
  def one(variables):
    _, updates = module.apply(variables, x, update_stats=True, mutable=['batch_stats'])
    return {'params': variables['params'], 'batch_stats': updates['batch_stats']}

  for _ in range(calls):
    variables = one(variables)
  return variables


def _top_sv(m):
  return np.linalg.svd(np.asarray(m, np.float64), compute_uv=False)[0]


def test_spectral_norm_dense():
  module = _SNDense()
  variables = _power_iterate(module, jnp.ones((2, 16)), calls=30)
  kernel = variables['params']['Dense_0']['kernel']
  stats = variables['batch_stats']['SpectralNorm_0']
  assert set(stats) == {'Dense_0/kernel/u', 'Dense_0/kernel/sigma'}
  assert stats['Dense_0/kernel/u'].shape == (1, 8)
  raw_sv = _top_sv(kernel)
  assert abs(raw_sv - 1) > 0.1  # otherwise normalisation would not be tested
  # The effective kernel the layer uses: without a bias, the rows of eye(16) map to its rows.
  w_bar = module.apply(variables, jnp.eye(16), update_stats=False)
  sv = _top_sv(w_bar)
  print(f'\nSpectralNorm(Dense): raw sigma_max {raw_sv:.4f}, normalised {sv:.6f}')
  assert abs(sv - 1) < SN_TOL
  np.testing.assert_allclose(stats['Dense_0/kernel/sigma'], raw_sv, rtol=SN_TOL)


def test_spectral_norm_conv():
  module = _SNConv()
  variables = _power_iterate(module, jnp.ones((1, 8, 8, 3)), calls=30)
  kernel = variables['params']['Conv_0']['kernel']
  assert kernel.shape == (3, 3, 3, 6)
  raw_sv = _top_sv(kernel.reshape(-1, 6))
  assert abs(raw_sv - 1) > 0.1
  # Read the effective kernel back from the layer: a one-hot 3x3x3 patch at position (i, j, c)
  # gives, under a VALID 3x3 conv, the output W_bar[i, j, c, :]; in C order that is the
  # [kh*kw*cin, cout] matrix flax normalises.
  patches = jnp.eye(27).reshape(27, 3, 3, 3)
  w_bar = module.apply(variables, patches, update_stats=False).reshape(27, 6)
  sv = _top_sv(w_bar)
  print(f'\nSpectralNorm(Conv): raw sigma_max {raw_sv:.4f}, normalised {sv:.6f}')
  assert abs(sv - 1) < SN_TOL
  np.testing.assert_allclose(w_bar, kernel.reshape(27, 6) / raw_sv, rtol=SN_TOL, atol=1e-4)
  sigma = variables['batch_stats']['SpectralNorm_0']['Conv_0/kernel/sigma']
  np.testing.assert_allclose(sigma, raw_sv, rtol=SN_TOL)
