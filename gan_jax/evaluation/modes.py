"""Mode-collapse metrics for 2-D Gaussian mixtures with known centres (the ring and the grid).

Following the VEEGAN / PacGAN protocol: a generated point is *high quality* when it lies within
3 standard deviations of some mode centre; a mode is *covered* when at least 1 % of all samples
are high-quality points of that mode.
"""

from typing import Dict

import jax
import jax.numpy as jnp


@jax.jit
def _assign(samples, centers):
  d2 = jnp.sum(jnp.square(samples[:, None, :] - centers[None, :, :]), axis=-1)  # [N, K]
  nearest = jnp.argmin(d2, axis=1)
  return nearest, jnp.sqrt(jnp.min(d2, axis=1))


def mode_metrics(samples, centers, std: float, min_fraction: float = 0.01) -> Dict[str, float]:
  """Mode coverage of ``samples`` ``[N, 2]`` for a mixture with ``centers`` ``[K, 2]``.

  Returns:
    modes_covered: number of modes holding >= ``min_fraction`` of the N samples within 3 std.
    num_modes: K.
    high_quality: fraction of samples within 3 std of their nearest centre.
    kl_uniform: KL(q || U) in nats of the histogram q of high-quality samples over modes against
      the uniform distribution over the K modes (0 = perfectly balanced; log K = one mode, and
      also what is reported when no sample is high quality).
    num_samples: N (every metric depends on it).
  """
  samples = jnp.asarray(samples, jnp.float32)
  centers = jnp.asarray(centers, jnp.float32)
  n, k = samples.shape[0], centers.shape[0]
  nearest, dist = _assign(samples, centers)
  hq = dist <= 3.0 * std
  counts = jnp.zeros(k).at[nearest].add(hq.astype(jnp.float32))
  covered = jnp.sum(counts >= min_fraction * n)
  total = jnp.sum(counts)
  q = counts / jnp.maximum(total, 1.0)
  kl = jnp.sum(jnp.where(q > 0, q * (jnp.log(jnp.maximum(q, 1e-30)) + jnp.log(k)), 0.0))
  return {
      'modes_covered': int(covered),
      'num_modes': int(k),
      'high_quality': float(jnp.mean(hq)),
      # With no high-quality sample at all, report the KL of total collapse (log K).
      'kl_uniform': float(kl) if total > 0 else float(jnp.log(k)),
      'num_samples': int(n),
  }
