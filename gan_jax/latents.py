"""Paths through latent space: spherical interpolation (slerp) and the latents of an interpolation
picture.

Slerp (Shoemake 1985, "Animating rotation with quaternion curves"; for GAN latents White 2016,
"Sampling Generative Networks", arXiv:1609.04468): with Ω the angle between ``z0`` and ``z1``,

    slerp(z0, z1, t) = sin((1 - t) Ω) / sin Ω · z0 + sin(t Ω) / sin Ω · z1.

For equal-norm ``z0, z1`` the path stays on the sphere of that radius and the angle to ``z0`` grows
linearly, ``t Ω``. A Gaussian latent in d dimensions has norm close to sqrt(d); the straight line
(lerp) between two of them dips towards the origin (to 1/sqrt(2) of the norm half-way between
orthogonal latents), where G has seen almost no inputs, so slerp is the path to look at.
"""

import functools

import jax
import jax.numpy as jnp

# Where 1 - |cos Ω| is below this (Ω within 0.26 degrees of 0 or 180) the two vectors count as
# (anti)parallel: slerp's weights tend to 0/0 and the great circle through them is undefined
# (antiparallel) or has length ~0 (parallel). Exactly antiparallel float32 vectors give
# |cos Ω| = 1 - O(1e-7), so the test must sit well above float32 rounding.
_PARALLEL_TOL = 1e-5


def lerp(z0, z1, t):
  """The straight line ``(1 - t) z0 + t z1``; broadcasts like ``slerp``."""
  t = jnp.asarray(t)
  return (1.0 - t) * z0 + t * z1


@jax.jit
def slerp(z0, z1, t):
  """Spherical linear interpolation between the vectors on the last axis of ``z0`` and ``z1``.

  Args:
    z0, z1: ``[..., d]`` arrays (broadcastable against each other).
    t: the fraction along the path, ``[...]`` broadcastable with ``z0[..., 0]`` and with a
      trailing axis of size 1 (e.g. ``t[:, None]`` for ``z0 [d]`` and ``t [n]``); 0 gives
      ``z0``, 1 gives ``z1`` exactly.

  Returns:
    ``sin((1-t)Ω)/sin Ω · z0 + sin(tΩ)/sin Ω · z1`` with ``Ω = arccos(<z0, z1> / (|z0| |z1|))``;
    ``lerp(z0, z1, t)`` where ``1 - |cos Ω| < 1e-5`` (parallel or antiparallel to within 0.26
    degrees) or a vector is zero, so the result is never NaN.
  """
  z0, z1 = jnp.asarray(z0), jnp.asarray(z1)
  t = jnp.asarray(t, jnp.result_type(z0.dtype, z1.dtype, jnp.float32))
  norms = jnp.linalg.norm(z0, axis=-1, keepdims=True) * jnp.linalg.norm(z1, axis=-1, keepdims=True)
  cos = jnp.sum(z0 * z1, axis=-1, keepdims=True) / jnp.where(norms > 0, norms, 1.0)
  omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
  sin = jnp.sin(omega)
  parallel = (1.0 - jnp.abs(cos) < _PARALLEL_TOL) | (norms == 0)
  safe_sin = jnp.where(parallel, 1.0, sin)
  spherical = (jnp.sin((1.0 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / safe_sin
  out = jnp.where(parallel, lerp(z0, z1, t), spherical)
  # The formula gives the endpoints only up to rounding; make them exact.
  return jnp.where(t == 0, z0, jnp.where(t == 1, z1, out))


@functools.partial(jax.jit, static_argnames=('rows', 'steps', 'dim'))
def interpolation_latents(key, rows: int, steps: int, dim: int):
  """``[rows * steps, dim]`` latents: row ``i`` slerps from one N(0, I) draw to another in
  ``steps`` evenly spaced ``t`` from 0 to 1 (row-major, as ``images.grid(ncol=steps)`` lays out)."""
  k0, k1 = jax.random.split(key)
  z0 = jax.random.normal(k0, (rows, 1, dim))
  z1 = jax.random.normal(k1, (rows, 1, dim))
  t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
  return slerp(z0, z1, t).reshape(rows * steps, dim)
