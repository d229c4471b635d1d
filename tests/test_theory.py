"""The theory the losses rest on, checked numerically through our code.

* Goodfellow et al., 2014, prop. 1: for fixed G the D minimising the minimax D loss is
  D*(x) = p(x) / (p(x) + q(x)) (p the data density, q the generator's). Checked with
  ``losses.minimax_d_loss`` on free per-bin logits, and with a D trained by ``steps.d_step``
  against an affine G.
* Theorem 1 there: V(D*, G) = -log 4 + 2 JSD(p || q), so -log 4 at p = q; checked with
  ``losses.value`` / ``losses.minimax_d_loss`` at D*, and on the D that ``steps.d_step`` trains.
* Section 3: the minimax G loss saturates when D is confident; the non-saturating one does not.
* Miyato et al., 2018: a spectrally normalised layer has top singular value 1; checked on layers
  wrapped by our ``maybe_sn`` (gan_jax/models/layers.py, what the models use) and on the MLP
  discriminator built with ``spectral_norm=True``, which is then 1-Lipschitz.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, special, stats

from gan_jax import losses, steps
from gan_jax.models import mlp
from gan_jax.models.layers import maybe_sn
from gan_jax.state import create_state

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


def _counts(probs, n):
  """Integer counts summing to ``n``, each >= 1, proportional to ``probs`` (largest remainders)."""
  raw = np.asarray(probs, np.float64) * (n - len(probs))
  counts = np.floor(raw).astype(int) + 1
  counts[np.argsort(raw - np.floor(raw))[::-1][:n - counts.sum()]] += 1
  assert counts.sum() == n and counts.min() >= 1
  return counts


def _as_samples(per_bin, counts):
  """``per_bin[i]`` repeated ``counts[i]`` times: a batch whose sample mean is the exact
  expectation under p_i = counts_i / sum(counts)."""
  return jnp.repeat(per_bin, counts, total_repeat_length=int(counts.sum()))


def test_optimal_discriminator_discrete():
  """Free per-bin logits l_i trained on ``losses.minimax_d_loss`` of a real batch that holds bin
  i n_p,i times and a fake batch that holds it n_q,i times (so the loss is exactly
  sum_i p_i (-log sigmoid(l_i)) + q_i (-log sigmoid(-l_i))) reach sigmoid(l_i) = p_i/(p_i+q_i)."""
  n = 4000
  cp, cq = _counts(_discrete_gaussian(-1.0, 1.0), n), _counts(_discrete_gaussian(1.0, 1.5), n)
  p, q = cp / n, cq / n

  def expected_d_loss(logits):
    return losses.minimax_d_loss(_as_samples(logits, cp), _as_samples(logits, cq))

  logits = _adam_fit(expected_d_loss, jnp.zeros(GRID.size), lr=0.05, steps=3000)
  d_star = p / (p + q)
  err = np.max(np.abs(np.asarray(jax.nn.sigmoid(logits), np.float64) - d_star))
  print(f'\ndiscrete D*: max |sigmoid(l_i) - p_i/(p_i+q_i)| = {err:.2e} (tol {DISCRETE_TOL})')
  assert err < DISCRETE_TOL
  # The optimum spans confident and unsure bins, so this is not a near-constant target.
  assert d_star.min() < 0.01 and d_star.max() > 0.8


SAMPLED_TOL = 0.05
# The data p = N(-1, 1); the generator G(z) = 1.5 z + 1, z ~ N(0, 1), so q = N(1, 1.5^2).
P_MU, P_SIGMA, Q_MU, Q_SIGMA = -1.0, 1.0, 1.0, 1.5


def _affine_g_state(scale, shift, d_lr, d_hidden=(32, 32)):
  """G(z) = scale z + shift (a 1-D linear G, never updated here) and a LeakyReLU MLP D,
  Adam(d_lr): the state ``steps.d_step`` trains."""
  g = mlp.Generator(out_shape=(1,), hidden=(), tanh=False)
  d = mlp.Discriminator(hidden=d_hidden, pieces=1, input_dropout=0.0, dropout=0.0)
  state = create_state(g, d, optax.sgd(0.0), optax.adam(d_lr), 1, (1,), jax.random.key(0))
  g_params = {'Dense_0': {'kernel': jnp.full((1, 1), scale), 'bias': jnp.full((1,), shift)}}
  return state.replace(g=state.g.replace(params=g_params))


@functools.partial(jax.jit, static_argnames=('num_steps', 'batch'))
def _train_d(state, key, num_steps, batch, real_mu, real_sigma):
  """``num_steps`` of ``steps.d_step`` (minimax loss) on real batches from N(real_mu,
  real_sigma^2); returns the state and each step's reported ``loss_D``."""
  cfg = steps.StepConfig(loss='minimax', latent_dim=1)

  def one(state, k):
    k_real, k_step = jax.random.split(k)
    real = real_mu + real_sigma * jax.random.normal(k_real, (batch, 1))
    state, m = steps.d_step(state, real, k_step, cfg)
    return state, m['loss_D']

  return jax.lax.scan(one, state, jax.random.split(key, num_steps))


def _d_of(state, xs):
  logits = state.d.apply_fn({'params': state.d.params}, jnp.asarray(xs[:, None], jnp.float32),
                            train=False)
  return np.asarray(jax.nn.sigmoid(logits), np.float64)


def _gaussian_jsd(mu1, s1, mu2, s2):
  """JSD(N(mu1, s1^2) || N(mu2, s2^2)) in nats, by quadrature."""
  p, q = stats.norm(mu1, s1).pdf, stats.norm(mu2, s2).pdf
  kl = lambda a, b: integrate.quad(lambda x: a(x) * np.log(2 * a(x) / (a(x) + b(x))), -15, 15)[0]
  return 0.5 * kl(p, q) + 0.5 * kl(q, p)


def test_optimal_discriminator_trained_by_d_step():
  """A D trained by ``steps.d_step`` (minimax loss) on real batches from p = N(-1, 1) against
  the fakes of G(z) = 1.5 z + 1, q = N(1, 1.5^2), approaches D*(x) = p/(p+q), and its loss
  approaches -V(D*, G) = log 4 - 2 JSD(p || q) (Goodfellow et al., prop. 1 and theorem 1)."""
  state = _affine_g_state(Q_SIGMA, Q_MU, d_lr=3e-3)
  trained, loss_d = _train_d(state, jax.random.key(1), 3000, 512, P_MU, P_SIGMA)
  # [-2, 2]: within about one std of either mean, where both densities have mass.
  xs = np.linspace(-2.0, 2.0, 41)
  p, q = stats.norm(P_MU, P_SIGMA).pdf(xs), stats.norm(Q_MU, Q_SIGMA).pdf(xs)
  d_star = p / (p + q)
  err = np.max(np.abs(_d_of(trained, xs) - d_star))
  print(f'\nD* through d_step: max |D(x) - p/(p+q)| on [-2, 2] = {err:.3f} (tol {SAMPLED_TOL})')
  assert err < SAMPLED_TOL
  assert d_star.min() < 0.25 and d_star.max() > 0.75  # a D far from constant
  # The loss of the last 500 steps (their mean has a standard error of ~0.005).
  want = np.log(4) - 2 * _gaussian_jsd(P_MU, P_SIGMA, Q_MU, Q_SIGMA)
  np.testing.assert_allclose(np.mean(np.asarray(loss_d)[-500:]), want, atol=0.03)
  assert want < np.log(4) - 0.3  # distinct densities: the value is well below log 4
  for a, b in zip(jax.tree.leaves(trained.g.params), jax.tree.leaves(state.g.params)):
    np.testing.assert_array_equal(a, b)  # d_step leaves G as it was


def test_d_step_at_equal_densities_reaches_one_half_and_minus_log_4():
  """p_g = p_data (G(z) = z, reals from N(0, 1)): the D that ``steps.d_step`` trains tends to
  D* = 1/2, and its minimax loss to log 4, i.e. V = ``losses.value`` = -log 4."""
  state = _affine_g_state(1.0, 0.0, d_lr=1e-3, d_hidden=(16,))
  trained, loss_d = _train_d(state, jax.random.key(2), 600, 512, 0.0, 1.0)
  xs = np.linspace(-2.0, 2.0, 21)
  assert np.max(np.abs(_d_of(trained, xs) - 0.5)) < 0.05
  np.testing.assert_allclose(np.mean(np.asarray(loss_d)[-200:]), np.log(4), atol=0.01)
  k_real, k_fake = jax.random.split(jax.random.key(3))
  batch = lambda k: jax.random.normal(k, (4096, 1))
  logits = lambda x: trained.d.apply_fn({'params': trained.d.params}, x, train=False)
  v = losses.value(logits(batch(k_real)), logits(batch(k_fake)))
  np.testing.assert_allclose(v, -np.log(4), atol=0.01)


# ---------------------------------------------------------------------------------------------
# Value at the optimum.


def _jsd(p, q):
  m = 0.5 * (p + q)
  return 0.5 * np.sum(special.rel_entr(p, m)) + 0.5 * np.sum(special.rel_entr(q, m))


@pytest.mark.parametrize('seed', range(5))
def test_value_at_optimum_is_jsd(seed):
  """``losses.value`` is a sample mean; with p and q multiples of 1/N, N logits holding bin i
  n_i times give the exact expectation. At D*, logit(D*) = log p - log q, and
  V(D*, G) = -log 4 + 2 JSD(p || q), the minimax D loss its negative."""
  rng = np.random.RandomState(seed)
  n = 400
  cp, cq = _counts(rng.dirichlet(np.ones(20)), n), _counts(rng.dirichlet(np.ones(20)), n)
  p, q = cp / n, cq / n
  jsd = _jsd(p, q)
  assert 0.05 < jsd < np.log(2)  # distinct p, q: a non-trivial JSD
  logit_star = jnp.asarray(np.log(p) - np.log(q), jnp.float32)
  real, fake = _as_samples(logit_star, cp), _as_samples(logit_star, cq)
  want = -np.log(4) + 2 * jsd
  np.testing.assert_allclose(losses.value(real, fake), want, rtol=1e-5)
  np.testing.assert_allclose(losses.minimax_d_loss(real, fake), -want, rtol=1e-5)
  # Any other D does worse for D (lower value): D* is the maximiser.
  for shift in (-0.3, 0.3):
    assert losses.value(real + shift, fake + shift) < losses.value(real, fake)
  assert losses.value(1.2 * real, 1.2 * fake) < losses.value(real, fake)


def test_value_at_equal_densities_is_minus_log_4():
  """At p = q, D* = 1/2 everywhere (logit 0): ``losses.value`` is -log 4 on any batches, and the
  minimax D loss log 4 (not log 2: the classic slip of keeping one of the two terms)."""
  zeros = jnp.zeros((37,))
  np.testing.assert_allclose(losses.value(zeros, jnp.zeros((11,))), -np.log(4), rtol=1e-6)
  np.testing.assert_allclose(losses.minimax_d_loss(zeros, zeros), np.log(4), rtol=1e-6)
  np.testing.assert_allclose(losses.value(zeros, zeros), -1.3862943611, rtol=1e-6)
  p = np.random.RandomState(0).dirichlet(np.ones(40))
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
# Spectral normalisation through our ``maybe_sn`` (gan_jax/models/layers.py).
#
# maybe_sn wraps a layer in flax's ``nn.SpectralNorm``, which keeps in the 'batch_stats'
# collection, under the SpectralNorm module's scope, the power iteration's left vector
# ``<layer>/kernel/u`` [1, out] and its estimate ``<layer>/kernel/sigma``; the normalised kernel
# W / sigma is never stored, it is recomputed on every call from the raw kernel in 'params'.
# Each call runs one power iteration from the stored u; a training call (``train=True``, with
# mutable=['batch_stats']) writes u and sigma back, so repeated training calls refine the
# estimate, and an eval call leaves them. Kernels of rank > 2 are reshaped to [-1, out], i.e.
# [kh*kw*cin, cout] for a conv.

SN_TOL = 1e-2


class _SNDense(nn.Module):
  """Used as a model would: the wrapped layer's params stay under its own name ('Dense_0'),
  the power-iteration state goes to batch_stats['SpectralNorm_0']['Dense_0/kernel/{u,sigma}']."""
  use_sn: bool = True

  @nn.compact
  def __call__(self, x, train):
    return maybe_sn(nn.Dense(8, use_bias=False), self.use_sn, train)(x)


class _SNConv(nn.Module):

  @nn.compact
  def __call__(self, x, train):
    conv = nn.Conv(6, (3, 3), padding='VALID', use_bias=False)
    return maybe_sn(conv, True, train)(x)


def _power_iterate(module, x, calls, variables=None):
  """``calls`` training calls of ``module`` (init draws u from the 'params' rng)."""
  if variables is None:
    variables = module.init(jax.random.key(0), x, train=False)

  @jax.jit
  def one(variables):
    _, updates = module.apply(variables, x, train=True, mutable=['batch_stats'])
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
  stats_ = variables['batch_stats']['SpectralNorm_0']
  assert set(stats_) == {'Dense_0/kernel/u', 'Dense_0/kernel/sigma'}
  assert stats_['Dense_0/kernel/u'].shape == (1, 8)
  raw_sv = _top_sv(kernel)
  assert abs(raw_sv - 1) > 0.1  # otherwise normalisation would not be tested
  # The effective kernel the layer uses: without a bias, the rows of eye(16) map to its rows.
  w_bar = module.apply(variables, jnp.eye(16), train=False)
  sv = _top_sv(w_bar)
  print(f'\nmaybe_sn(Dense): raw sigma_max {raw_sv:.4f}, normalised {sv:.6f}')
  assert abs(sv - 1) < SN_TOL
  np.testing.assert_allclose(stats_['Dense_0/kernel/sigma'], raw_sv, rtol=SN_TOL)
  # use=False: the plain layer, no statistics, the raw kernel.
  plain = _SNDense(use_sn=False)
  plain_vars = plain.init(jax.random.key(0), jnp.ones((2, 16)), train=False)
  assert 'batch_stats' not in plain_vars
  np.testing.assert_allclose(plain.apply({'params': variables['params']}, jnp.eye(16),
                                         train=False), kernel, rtol=1e-6)


def test_spectral_norm_power_iteration_runs_in_training_calls_only():
  """Training calls store the refined u and sigma; eval calls use them and store nothing."""
  module = _SNDense()
  x = jnp.ones((2, 16))
  variables = module.init(jax.random.key(0), x, train=False)
  _, after_eval = module.apply(variables, x, train=False, mutable=['batch_stats'])
  jax.tree.map(np.testing.assert_array_equal, after_eval['batch_stats'],
               variables['batch_stats'])
  _, after_train = module.apply(variables, x, train=True, mutable=['batch_stats'])
  u0 = variables['batch_stats']['SpectralNorm_0']['Dense_0/kernel/u']
  assert not np.allclose(after_train['batch_stats']['SpectralNorm_0']['Dense_0/kernel/u'], u0)


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
  w_bar = module.apply(variables, patches, train=False).reshape(27, 6)
  sv = _top_sv(w_bar)
  print(f'\nmaybe_sn(Conv): raw sigma_max {raw_sv:.4f}, normalised {sv:.6f}')
  assert abs(sv - 1) < SN_TOL
  np.testing.assert_allclose(w_bar, kernel.reshape(27, 6) / raw_sv, rtol=SN_TOL, atol=1e-4)
  sigma = variables['batch_stats']['SpectralNorm_0']['Conv_0/kernel/sigma']
  np.testing.assert_allclose(sigma, raw_sv, rtol=SN_TOL)


@pytest.mark.parametrize('hidden', [(), (16, 16)], ids=['linear', 'two_hidden'])
def test_spectral_norm_mlp_discriminator_is_1_lipschitz(hidden):
  """``mlp.Discriminator(spectral_norm=True)``: every dense layer has unit spectral norm and
  LeakyReLU(0.2) is 1-Lipschitz, so ||dD/dx|| <= 1 everywhere (Miyato et al., 2018); with no
  hidden layer D is linear, D(x) = w_bar.x + b, and ||dD/dx|| = ||w_bar|| = 1 exactly. With the
  same (scaled-up) params and no normalisation the input gradients are far larger."""
  kw = dict(hidden=hidden, pieces=1, input_dropout=0.0, dropout=0.0)
  sn_d, raw_d = mlp.Discriminator(spectral_norm=True, **kw), mlp.Discriminator(**kw)
  x = jax.random.normal(jax.random.key(1), (256, 4))
  variables = sn_d.init(jax.random.key(0), x, train=False)
  variables = {'params': jax.tree.map(lambda p: 4.0 * p, variables['params']),
               'batch_stats': variables['batch_stats']}
  variables = _power_iterate(sn_d, x, calls=50, variables=variables)

  def grad_norms(module, v):
    g = jax.grad(lambda x: jnp.sum(module.apply(v, x, train=False)))(x)
    return np.linalg.norm(np.asarray(g, np.float64), axis=1)

  sn_norms = grad_norms(sn_d, variables)
  raw_norms = grad_norms(raw_d, {'params': variables['params']})
  print(f'\nSN MLP D {hidden}: max ||dD/dx|| {sn_norms.max():.4f}; without SN '
        f'{raw_norms.max():.2f}')
  if not hidden:
    np.testing.assert_allclose(sn_norms, 1.0, rtol=1e-5)
  assert sn_norms.max() <= 1 + SN_TOL
  assert raw_norms.max() > 3
