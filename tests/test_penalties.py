"""Penalties against closed forms.

A linear critic D(x) = w.x + b has input gradient w at every x, so each gradient-norm penalty has
a closed form in ||w|| whatever the samples, interpolates or perturbations are. A quadratic
critic D(x) = a/2 ||x||^2 (gradient a x) then checks that the gradient is taken at the right
points.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import penalties
from gan_jax.errors import ConfigError

B = 8


def _linear(w, b=0.3):
  """D(x) = <w, x_i> + b per sample; w has x's per-sample shape."""
  return lambda x: jnp.sum(x * w, axis=tuple(range(1, x.ndim))) + b


def _quadratic(a):
  return lambda x: 0.5 * a * jnp.sum(jnp.square(x), axis=tuple(range(1, x.ndim)))


def _batches(shape, seed=0):
  rng = np.random.RandomState(seed)
  real = rng.normal(size=(B,) + shape).astype(np.float32)
  fake = rng.normal(size=(B,) + shape).astype(np.float32)
  return jnp.asarray(real), jnp.asarray(fake)


def _w(shape, norm, seed=1):
  w = np.random.RandomState(seed).normal(size=shape)
  return jnp.asarray(w / np.linalg.norm(w) * norm, jnp.float32)


SHAPES = [(5,), (4, 4, 1)]
KEY = jax.random.key(0)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('norm', [0.5, 1.7])
def test_r1_r2_linear(shape, norm):
  real, fake = _batches(shape)
  w = _w(shape, norm)
  gamma = 10.0
  want = gamma / 2 * float(np.sum(np.square(np.asarray(w, np.float64))))
  for value in (penalties.r1(_linear(w), real, gamma), penalties.r2(_linear(w), fake, gamma)):
    chex.assert_shape(value, ())
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, want, rtol=1e-6)


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('norm', [0.5, 1.7, 3.0])
def test_gp_and_dragan_linear(shape, norm):
  real, fake = _batches(shape)
  w = _w(shape, norm)
  n = float(np.linalg.norm(np.asarray(w, np.float64)))
  d = _linear(w)
  np.testing.assert_allclose(penalties.gradient_penalty(d, real, fake, KEY), (n - 1)**2,
                             rtol=1e-5)
  np.testing.assert_allclose(penalties.dragan(d, real, KEY), (n - 1)**2, rtol=1e-5)
  one_sided = penalties.gradient_penalty(d, real, fake, KEY, one_sided=True)
  if n < 1:
    assert one_sided == 0.0
  else:
    np.testing.assert_allclose(one_sided, (n - 1)**2, rtol=1e-5)
  # Another target: (||w|| - K)^2 for a K-Lipschitz constraint.
  np.testing.assert_allclose(penalties.gradient_penalty(d, real, fake, KEY, target=2.0),
                             (n - 2)**2, rtol=1e-5)


@pytest.mark.parametrize('shape', SHAPES)
def test_gp_exactly_zero_at_unit_norm(shape):
  # Entries chosen so that ||w|| = 1 exactly in float32: 5 entries of 0.5 with one zeroed, or
  # 16 entries of 1/4.
  w = np.full(shape, 0.5 if len(shape) == 1 else 0.25, np.float32)
  if len(shape) == 1:
    w[0] = 0.0
  assert np.sum(np.square(w)) == 1.0
  real, fake = _batches(shape)
  d = _linear(jnp.asarray(w))
  assert penalties.gradient_penalty(d, real, fake, KEY) == 0.0
  assert penalties.gradient_penalty(d, real, fake, KEY, one_sided=True) == 0.0
  assert penalties.dragan(d, real, KEY) == 0.0


def test_quadratic_critic_r1():
  """D(x) = a/2 ||x||^2 has gradient a x: R1 = gamma/2 a^2 E||x||^2, on image-shaped inputs."""
  real, fake = _batches((4, 4, 1))
  a, gamma = 0.7, 5.0
  sq = np.sum(np.square(np.asarray(real, np.float64)).reshape(B, -1), axis=1)
  np.testing.assert_allclose(penalties.r1(_quadratic(a), real, gamma),
                             gamma / 2 * a**2 * np.mean(sq), rtol=1e-5)
  sq_fake = np.sum(np.square(np.asarray(fake, np.float64)).reshape(B, -1), axis=1)
  np.testing.assert_allclose(penalties.r2(_quadratic(a), fake, gamma),
                             gamma / 2 * a**2 * np.mean(sq_fake), rtol=1e-5)


def _nonlinear(a, b, c=0.2):
  """D(x) = sum_j a_j x_j^2 + b_j x_j + c per sample (a, b of x's per-sample shape): its input
  gradient 2 a x + b differs from sample to sample, unlike a linear critic's."""
  axes = lambda x: tuple(range(1, x.ndim))
  return lambda x: jnp.sum(a * jnp.square(x) + b * x, axis=axes(x)) + c


def _nonlinear_r(x, a, b, gamma):
  """gamma/2 mean_i ||2 a x_i + b||^2 in float64: R1 (x real) or R2 (x fake) of ``_nonlinear``."""
  x, a, b = (np.asarray(v, np.float64) for v in (x, a, b))
  g = (2 * a * x + b).reshape(x.shape[0], -1)
  return gamma / 2 * np.mean(np.sum(np.square(g), axis=1))


@pytest.mark.parametrize('shape', SHAPES)
def test_registry_r1_is_taken_on_the_reals_and_r2_on_the_fakes(shape):
  """Through the registry (the trainer's only way in), with a critic whose gradient depends on
  x: R1 must equal its closed form on the real batch and R2 on the fake batch. The two closed
  forms differ by far more than the tolerance, so a swap of real and fake fails."""
  real, fake = _batches(shape)
  fake = 2.0 + 1.5 * fake  # a fake batch unlike the real one
  rng = np.random.RandomState(3)
  a = jnp.asarray(rng.uniform(0.2, 1.0, shape), jnp.float32)
  b = jnp.asarray(rng.normal(size=shape), jnp.float32)
  d = _nonlinear(a, b)
  gamma = 7.0
  on_real, on_fake = _nonlinear_r(real, a, b, gamma), _nonlinear_r(fake, a, b, gamma)
  assert abs(on_real - on_fake) > 0.5 * on_real  # the test can tell the batches apart
  got_r1 = penalties.get_penalty('r1')(d, real, fake, KEY, gamma)
  got_r2 = penalties.get_penalty('r2')(d, real, fake, KEY, gamma)
  np.testing.assert_allclose(got_r1, on_real, rtol=1e-5)
  np.testing.assert_allclose(got_r2, on_fake, rtol=1e-5)
  # The gradient w.r.t. the critic's params (double backprop) is the closed form's too:
  # d/db gamma/2 mean_i ||2 a x_i + b||^2 = gamma mean_i (2 a x_i + b), on the reals for R1.
  g_b = jax.grad(lambda b: penalties.get_penalty('r1')(_nonlinear(a, b), real, fake, KEY,
                                                       gamma))(b)
  want = gamma * np.mean(2 * np.asarray(a, np.float64) * np.asarray(real, np.float64)
                         + np.asarray(b, np.float64), axis=0)
  np.testing.assert_allclose(g_b, want, rtol=1e-4, atol=1e-5)


def test_gp_norms_are_per_sample():
  # With real == fake every interpolate is x itself whatever eps is, so the GP of the quadratic
  # critic is mean_i (a ||x_i|| - 1)^2: per-sample norms, not one norm of the whole batch.
  real, _ = _batches((4, 4, 1))
  a = 0.3
  norms = a * np.linalg.norm(np.asarray(real, np.float64).reshape(B, -1), axis=1)
  np.testing.assert_allclose(penalties.gradient_penalty(_quadratic(a), real, real, KEY),
                             np.mean((norms - 1)**2), rtol=1e-5)


def test_gp_interpolates_with_one_eps_per_sample():
  """real = ones [N, 4, 4, 1], fake = 0, D = ||x||^2 / 2: the gradient at x̂ = eps * 1 is x̂,
  of norm 4 eps with one eps ~ U[0, 1] per sample, so E[(4 eps - 2)^2] = 4/3. An eps per pixel
  would give ||x̂|| ~ sqrt(16/3) for every sample and a penalty near 0.1 instead."""
  n = 4096
  real = jnp.ones((n, 4, 4, 1))
  got = penalties.gradient_penalty(_quadratic(1.0), real, jnp.zeros_like(real), KEY, target=2.0)
  # Std of the estimate: sqrt(Var[(4 eps - 2)^2] / n) = sqrt((16/5 - 16/9) / 4096) ~ 0.019.
  np.testing.assert_allclose(got, 4 / 3, atol=0.08)


def test_dragan_perturbation_scale():
  """x in {2, 6} (batch std 2), c = 0.5: x_p = x + u with u ~ U[0, 1], so for D = x^2/2 and
  target 0 the penalty is E[x_p^2] = E[x^2] + 2 E[x] E[u] + E[u^2] = 20 + 4 + 1/3. Without the
  std factor (x + 0.5 u) it would be 22.08; without the perturbation, 20."""
  n = 4096
  x = jnp.asarray(np.where(np.arange(n) % 2 == 0, 2.0, 6.0)[:, None], jnp.float32)
  got = penalties.dragan(_quadratic(1.0), x, KEY, c=0.5, target=0.0)
  np.testing.assert_allclose(got, 20 + 4 + 1 / 3, atol=0.4)
  # A constant batch has std 0 and is not perturbed: exactly (|x| - target)^2.
  const = jnp.full((B, 1), 3.0)
  np.testing.assert_allclose(penalties.dragan(_quadratic(1.0), const, KEY), 4.0, rtol=1e-6)


def test_penalty_gradients_wrt_critic_params():
  """Differentiating through the input gradient (double backprop) w.r.t. w: d/dw[gamma/2 ||w||^2]
  = gamma w, and d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||."""
  real, fake = _batches((4, 4, 1))
  w = _w((4, 4, 1), 1.7)
  gamma = 3.0
  g_r1 = jax.grad(lambda w: penalties.r1(_linear(w), real, gamma))(w)
  chex.assert_tree_all_finite(g_r1)
  np.testing.assert_allclose(g_r1, gamma * np.asarray(w), rtol=1e-5)
  n = np.linalg.norm(np.asarray(w, np.float64))
  want = 2 * (n - 1) * np.asarray(w, np.float64) / n
  g_gp = jax.grad(lambda w: penalties.gradient_penalty(_linear(w), real, fake, KEY))(w)
  np.testing.assert_allclose(g_gp, want, rtol=1e-4, atol=1e-7)
  g_dr = jax.grad(lambda w: penalties.dragan(_linear(w), real, KEY))(w)
  np.testing.assert_allclose(g_dr, want, rtol=1e-4, atol=1e-7)


def test_penalty_gradients_finite_for_a_flat_critic():
  # At w = 0 the input gradient is 0, where d sqrt(s)/ds is infinite; the epsilon inside the
  # square root keeps the double-backprop gradient finite (it is 0 by symmetry).
  real, fake = _batches((5,))
  w0 = jnp.zeros((5,))
  for fn in (lambda w: penalties.gradient_penalty(_linear(w), real, fake, KEY),
             lambda w: penalties.gradient_penalty(_linear(w), real, fake, KEY, one_sided=True),
             lambda w: penalties.dragan(_linear(w), real, KEY),
             lambda w: penalties.r1(_linear(w), real, 10.0)):
    v, g = jax.value_and_grad(fn)(w0)
    assert np.isfinite(v)
    chex.assert_tree_all_finite(g)
    np.testing.assert_array_equal(g, np.zeros(5))


def test_column_critic_output_bf16_inputs_and_jit():
  real, fake = _batches((4, 4, 1))
  w = _w((4, 4, 1), 1.7)
  col = lambda x: _linear(w)(x)[:, None]  # D returning [B, 1]
  n = float(np.linalg.norm(np.asarray(w, np.float64)))
  np.testing.assert_allclose(penalties.gradient_penalty(col, real, fake, KEY), (n - 1)**2,
                             rtol=1e-5)
  got = penalties.r1(_linear(w), real.astype(jnp.bfloat16), 2.0)
  assert got.dtype == jnp.float32
  np.testing.assert_allclose(got, n**2, rtol=1e-2)  # w is float32; bf16 x does not enter
  jitted = jax.jit(lambda r, f, k: penalties.gradient_penalty(_linear(w), r, f, k))
  np.testing.assert_allclose(jitted(real, fake, KEY), (n - 1)**2, rtol=1e-5)


def test_registry_weights_and_signature():
  real, fake = _batches((5,))
  w = _w((5,), 1.7)
  d = _linear(w)
  n2 = float(np.sum(np.square(np.asarray(w, np.float64))))
  n = np.sqrt(n2)
  lam = 10.0
  want = {
      'none': 0.0,
      'gp': lam * (n - 1)**2,
      'gp_one_sided': lam * (n - 1)**2,
      'r1': lam / 2 * n2,
      'r2': lam / 2 * n2,
      'dragan': lam * (n - 1)**2,
  }
  assert set(penalties.PENALTIES) == set(want)
  for name, value in want.items():
    got = penalties.get_penalty(name)(d, real, fake, KEY, lam)
    chex.assert_shape(got, ())
    assert got.dtype == jnp.float32, name
    np.testing.assert_allclose(got, value, rtol=1e-5, err_msg=name)
  # The one-sided entry really is one-sided: 0 for ||w|| < 1.
  small = _linear(_w((5,), 0.5))
  assert penalties.get_penalty('gp_one_sided')(small, real, fake, KEY, lam) == 0.0
  assert penalties.get_penalty('gp')(small, real, fake, KEY, lam) > 2.0


def test_unknown_penalty_lists_valid_names():
  with pytest.raises(ConfigError, match=r"config.penalty='gp2'.*valid: dragan, gp, gp_one_sided, "
                     r"none, r1, r2$"):
    penalties.get_penalty('gp2')


def test_clip_weights():
  params = {'Dense_0': {'kernel': jnp.array([[-0.5, 0.005], [0.02, -0.01]]),
                        'bias': jnp.array([0.3, -0.001])},
            'scale': jnp.array(-0.2, jnp.bfloat16)}
  out = penalties.clip_weights(params, 0.01)
  chex.assert_trees_all_equal_shapes_and_dtypes(out, params)
  f32 = lambda v: np.asarray(v, np.float32)
  np.testing.assert_array_equal(out['Dense_0']['kernel'], f32([[-0.01, 0.005], [0.01, -0.01]]))
  np.testing.assert_array_equal(out['Dense_0']['bias'], f32([0.01, -0.001]))
  assert out['scale'] == jnp.asarray(-0.01, jnp.bfloat16)
  # Pure: the input is unchanged.
  assert params['Dense_0']['kernel'][0, 0] == -0.5


def test_apply_lazily():
  p = jnp.float32(1.5)
  got = [float(penalties.apply_lazily(p, step, 4)) for step in range(8)]
  assert got == [6.0, 0.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0]
  # Over any window of `every` steps the mean is the un-lazy penalty: same expected gradient.
  assert np.mean(got) == 1.5
  assert [float(penalties.apply_lazily(p, s, 1)) for s in range(3)] == [1.5, 1.5, 1.5]
  # Under jit with a traced step counter, and the gradient is scaled the same way.
  f = jax.jit(lambda v, s: penalties.apply_lazily(v, s, 16))
  assert float(f(p, jnp.int32(32))) == 24.0 and float(f(p, jnp.int32(33))) == 0.0
  grad = jax.grad(lambda v, s: penalties.apply_lazily(v * v, s, 16))
  assert float(grad(p, jnp.int32(16))) == 16 * 2 * 1.5
  assert float(grad(p, jnp.int32(17))) == 0.0
  with pytest.raises(ValueError, match='every=0'):
    penalties.apply_lazily(p, 0, 0)
