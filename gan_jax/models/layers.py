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
  weight gradient is ~20x slower than it should be (shared/docs/PERF_NOTES.md). Here it is the
  textbook "scatter" form of a transposed conv: one matmul takes every input pixel to all 16
  kernel taps, ``t = x @ W`` (``[B*H*W, Cin] @ [Cin, 16*Cout]``), then each output phase sums
  four shifted tap planes (col2im). Per axis, even outputs are ``y[2m] = t[m-1, k=3] + t[m, k=1]``
  and odd outputs ``y[2m+1] = t[m, k=2] + t[m+1, k=0]``. The FLOPs are exactly those of the
  transposed conv, and forward, input gradient and weight gradient are each one large matmul.
  """
  features: int
  use_bias: bool = False
  kernel_init: Initializer = dcgan_init
  dtype: Any = None

  # Per output phase: (first tap row in the 1-padded tap grid, kernel index of each of 2 taps).
  _TAPS = ((0, (3, 1)), (1, (2, 0)))

  @nn.compact
  def __call__(self, x):
    b, h, w, cin = x.shape
    cout = self.features
    kernel = self.param('kernel', self.kernel_init, (4, 4, cin, cout), jnp.float32)
    dtype = self.dtype or x.dtype
    w_flat = kernel.astype(dtype).transpose(2, 0, 1, 3).reshape(cin, 16 * cout)
    t = jnp.dot(x.astype(dtype).reshape(b * h * w, cin), w_flat).reshape(b, h, w, 4, 4, cout)
    t = jnp.pad(t, ((0, 0), (1, 1), (1, 1), (0, 0), (0, 0), (0, 0)))
    rows = []
    for ra, ka in self._TAPS:
      cols = []
      for rc, kc in self._TAPS:
        cols.append(sum(t[:, ra + i:ra + i + h, rc + j:rc + j + w, ka[i], kc[j]]
                        for i in range(2) for j in range(2)))
      rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (col phase), Cout]
    y = jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, cout)  # interleave the phases
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (cout,), jnp.float32).astype(dtype)
    return y


class Maxout(nn.Module):
  """Maxout unit (Goodfellow et al., 2013): ``max_k (x W_k + b_k)``, ``[B, D] -> [B, features]``."""
  features: int
  pieces: int
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    y = nn.Dense(self.features * self.pieces, dtype=self.dtype)(x)
    return y.reshape(x.shape[0], self.features, self.pieces).max(axis=-1)


def minibatch_stddev(x, eps: float = 1e-8):
  """Minibatch standard deviation (Karras et al., 2018), a mode-collapse aid for D.

  Appends one feature: the batch standard deviation of every feature, averaged. A generator that
  collapses to few outputs makes this feature small on fake batches, which D can see. ``x`` is
  ``[B, ..., C]``; the result is ``[B, ..., C + 1]``. Under jit on a sharded batch the statistic
  is over the global batch.
  """
  std = jnp.sqrt(jnp.var(x.astype(jnp.float32), axis=0) + eps)
  stat = jnp.broadcast_to(jnp.mean(std).astype(x.dtype), x.shape[:-1] + (1,))
  return jnp.concatenate([x, stat], axis=-1)


def maybe_sn(layer: nn.Module, use: bool, train: bool):
  """``layer`` wrapped in spectral normalisation (Miyato et al., 2018) when ``use``.

  Flax keeps the power-iteration vector ``u`` and ``sigma`` in the ``'batch_stats'`` collection,
  so they live in the TrainState next to BN statistics and are checkpointed with it. One power
  iteration per training call (``update_stats=train``).
  """
  if not use:
    return layer
  sn = nn.SpectralNorm(layer)
  return lambda x: sn(x, update_stats=train)
