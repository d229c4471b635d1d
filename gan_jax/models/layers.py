"""Layers shared by the GAN models."""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

# DCGAN init (Radford et al., 2016): weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
dcgan_init = nn.initializers.normal(0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


class UpConv4x4s2(nn.Module):
  """Transposed convolution, kernel 4, stride 2, padding 1: ``[B,H,W,Cin] -> [B,2H,2W,Cout]``.

  The same function (and the same single 4x4 kernel parameter, ``kernel[kh, kw, cin, cout] =
  torch_weight[cin, cout, kh, kw]``) as PyTorch's ``ConvTranspose2d(cin, cout, 4, 2, 1)``:
  ``y[o] = sum_{i,k : o = 2i - 1 + k} x[i] W[k]`` per spatial axis.

  Why not ``nn.ConvTranspose``: XLA:CPU lowers it to a convolution with lhs dilation, whose
  weight gradient is ~20x slower than it should be (shared/docs/PERF_NOTES.md). Splitting the
  output by phase gives four dense 2x2 VALID convolutions on shifted slices of the padded input:
  per axis, even outputs ``y[2m] = x[m-1] W[3] + x[m] W[1]`` and odd outputs
  ``y[2m+1] = x[m] W[2] + x[m+1] W[0]``. No multiply-by-zero and no dilation, in either pass.
  """
  features: int
  use_bias: bool = False
  kernel_init: Initializer = dcgan_init
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    cin = x.shape[-1]
    kernel = self.param('kernel', self.kernel_init, (4, 4, cin, self.features), jnp.float32)
    dtype = self.dtype or x.dtype
    x = x.astype(dtype)
    kernel = kernel.astype(dtype)
    b, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    # Per axis and output phase: (start offset in the padded input, kernel taps in input order).
    taps = {0: (0, (3, 1)), 1: (1, (2, 0))}
    rows = []
    for a in (0, 1):
      ra, ka = taps[a]
      cols = []
      for c in (0, 1):
        rc, kc = taps[c]
        k = kernel[jnp.array(ka)][:, jnp.array(kc)]  # [2, 2, cin, cout]
        patch = xp[:, ra:ra + h + 1, rc:rc + w + 1, :]
        cols.append(jax.lax.conv_general_dilated(
            patch, k, (1, 1), 'VALID', dimension_numbers=('NHWC', 'HWIO', 'NHWC')))
      rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2(c), Cout]
    y = jnp.stack(rows, axis=2)  # [B, H, 2(a), W, 2(c), Cout]
    y = y.reshape(b, 2 * h, 2 * w, self.features)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32).astype(dtype)
    return y


class Maxout(nn.Module):
  """Maxout unit (Goodfellow et al., 2013): ``max_k (x W_k + b_k)``, ``[B, D] -> [B, features]``."""
  features: int
  pieces: int

  @nn.compact
  def __call__(self, x):
    y = nn.Dense(self.features * self.pieces)(x)
    return y.reshape(x.shape[0], self.features, self.pieces).max(axis=-1)
