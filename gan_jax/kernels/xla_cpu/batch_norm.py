"""Training-mode BatchNorm with a hand-written VJP, for XLA:CPU."""

import functools

import jax
import jax.numpy as jnp


def _channel_sums(a, b):
  """(sum a, sum b) over every axis but the last: two reductions, which XLA:CPU hands to
  YNNPACK's reduce kernels (one variadic reduce runs in XLA's own emitter, ~4x slower)."""
  axes = tuple(range(a.ndim - 1))
  return a.sum(axes), b.sum(axes)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def batch_norm(x, scale, bias, epsilon: float):
  """Training-mode BatchNorm over every axis but the last: ``(x - mean) * rsqrt(var + epsilon)
  * scale + bias`` with the batch's mean and biased variance (``E[x^2] - E[x]^2``, as
  ``nn.BatchNorm``). ``x [..., C]``, ``scale, bias [C]``; returns ``(y, mean, var)``.

  The same function as ``nn.BatchNorm``, with a hand-written VJP: with ``x_hat`` the normalised
  input and ``n`` the count per channel, ``dx = scale rstd (g - mean(g) - x_hat mean(g x_hat))``,
  ``dscale = sum(g x_hat)``, ``dbias = sum(g)``: two channel sums and one elementwise pass, where
  autodiff of the module leaves XLA:CPU five reductions and five elementwise passes over the
  activation (fwd+bwd ``[256, 14, 14, 128]`` with the ReLU fused in: 19.2 -> 13.7 ms). The
  activation after it (``nn.relu(norm(x))``) stays the model's; its mask reaches the backward as
  part of ``g``.
  """
  return _bn_fwd(x, scale, bias, epsilon)[0]


def _bn_stats(x):
  n = x.size // x.shape[-1]
  s, s2 = _channel_sums(x, x * x)
  mean = s / n
  return mean, jnp.maximum(0.0, s2 / n - mean * mean)


def _bn_fwd(x, scale, bias, epsilon):
  mean, var = _bn_stats(x)
  rstd = jax.lax.rsqrt(var + epsilon)
  y = (x - mean) * (rstd * scale) + bias
  return (y, mean, var), (x, mean, rstd, scale)


def _bn_bwd(epsilon, res, cts):
  del epsilon
  g, g_mean, g_var = cts
  x, mean, rstd, scale = res
  n = x.size // x.shape[-1]
  x_hat = (x - mean) * rstd
  sum_g, sum_gx = _channel_sums(g, g * x_hat)
  dx = (scale * rstd) * (g - sum_g / n - x_hat * (sum_gx / n))
  # The cotangents of the returned statistics (zero in a GAN step, where they only feed the
  # running averages): d mean / dx = 1/n, d var / dx = 2 (x - mean) / n.
  dx = dx + (g_mean + 2.0 * g_var * (x - mean)) / n
  return dx, sum_gx, sum_g


batch_norm.defvjp(_bn_fwd, _bn_bwd)
