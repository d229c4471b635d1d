"""Layers shared by the GAN models."""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]

# DCGAN init (Radford et al., 2016): weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
dcgan_init = nn.initializers.normal(0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


MATMUL_DTYPES = ('float32', 'bfloat16')


@jax.custom_vjp
def bf16_matmul(a, b):
  """``a [M, K] @ b [K, N]`` with bf16 inputs and float32 accumulation and output.

  The backward pass is two more such matmuls (the cotangent rounded to bf16), so the forward,
  input-gradient and weight-gradient products all run on the CPU's bf16 dot units
  (AVX512-BF16 ``vdpbf16ps``, AMX) while every result, the gradients included, is float32.
  ``jnp.dot`` with bf16 operands alone would not do: its transpose gets a float32 cotangent, and
  a mixed bf16 x f32 product runs at float32 speed. ``precision=BF16_BF16_F32`` on float32
  operands is accepted by XLA:CPU but runs at float32 speed (benchmarks/README.md).
  """
  return _bf16_dot(a, b)


def _bf16_dot(a, b):
  return jnp.dot(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16),
                 preferred_element_type=jnp.float32)


def _bf16_matmul_fwd(a, b):
  a16, b16 = a.astype(jnp.bfloat16), b.astype(jnp.bfloat16)
  # Zero-size arrays carry the operands' dtypes (residuals must be arrays).
  return _bf16_dot(a16, b16), (a16, b16, jnp.zeros((0,), a.dtype), jnp.zeros((0,), b.dtype))


def _bf16_matmul_bwd(res, g):
  a16, b16, a_like, b_like = res
  g16 = g.astype(jnp.bfloat16)
  return _bf16_dot(g16, b16.T).astype(a_like.dtype), _bf16_dot(a16.T, g16).astype(b_like.dtype)


bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def matmul(a, b, matmul_dtype: str = 'float32'):
  """``a @ b`` for 2-D operands: ``jnp.dot``, or ``bf16_matmul`` when ``matmul_dtype`` is
  'bfloat16' (the result is then float32 whatever the operands' dtype)."""
  if matmul_dtype == 'bfloat16':
    return bf16_matmul(a, b)
  if matmul_dtype != 'float32':
    raise ValueError(f'matmul_dtype={matmul_dtype!r}; valid: {", ".join(MATMUL_DTYPES)}')
  return jnp.dot(a, b)


def dense_dot_general(matmul_dtype: str):
  """A ``dot_general`` for ``nn.Dense(dot_general=...)`` that routes ``[B, K] x [K, N]`` through
  ``matmul(.., matmul_dtype)``; other contractions use ``lax.dot_general``."""
  def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    (lc, rc), (lb, rb) = dimension_numbers
    if (matmul_dtype != 'float32' and lhs.ndim == 2 and rhs.ndim == 2 and tuple(lc) == (1,)
        and tuple(rc) == (0,) and not lb and not rb):
      return matmul(lhs, rhs, matmul_dtype).astype(preferred_element_type or lhs.dtype)
    return jax.lax.dot_general(lhs, rhs, dimension_numbers, precision=precision,
                               preferred_element_type=preferred_element_type)
  return dot_general


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
  matmul_dtype: str = 'float32'  # 'bfloat16': bf16_matmul (bf16 inputs, f32 accumulation)

  # Per output phase: (first tap row in the 1-padded tap grid, kernel index of each of 2 taps).
  _TAPS = ((0, (3, 1)), (1, (2, 0)))

  @nn.compact
  def __call__(self, x):
    b, h, w, cin = x.shape
    cout = self.features
    kernel = self.param('kernel', self.kernel_init, (4, 4, cin, cout), jnp.float32)
    dtype = self.dtype or x.dtype
    w_flat = kernel.astype(dtype).transpose(2, 0, 1, 3).reshape(cin, 16 * cout)
    t = matmul(x.astype(dtype).reshape(b * h * w, cin), w_flat, self.matmul_dtype)
    t = t.astype(dtype).reshape(b, h, w, 4, 4, cout)
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
  matmul_dtype: str = 'float32'

  @nn.compact
  def __call__(self, x):
    y = nn.Dense(self.features * self.pieces, dtype=self.dtype,
                 dot_general=dense_dot_general(self.matmul_dtype))(x)
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


def labels_for(module: nn.Module, labels, batch: int):
  """``labels`` as int32 ``[batch]`` for a class-conditional net (one with ``num_classes``).

  While initialising, missing labels are zeros (they build the same params); when applying,
  they are a ValueError: a forgotten label must not silently mean class 0.
  """
  if labels is None:
    if module.is_initializing():
      return jnp.zeros((batch,), jnp.int32)
    raise ValueError(f'{type(module).__name__} is class-conditional (num_classes='
                     f'{module.num_classes}): pass labels=int [B] in [0, {module.num_classes})')
  labels = jnp.asarray(labels)
  if labels.shape != (batch,):
    raise ValueError(f'labels have shape {labels.shape}; expected ({batch},), one per sample')
  return labels.astype(jnp.int32)


class ConditionalBatchNorm(nn.Module):
  """Class-conditional BatchNorm (de Vries et al., 2017; Miyato & Koyama, 2018).

  ``y = gamma[label] * (x - mean) / sqrt(var + eps) + beta[label]``. The statistics are those of
  plain BatchNorm, shared by all classes: batch statistics in training, running averages
  otherwise, kept in ``'batch_stats'``. The scale and shift are per-class rows of two
  ``[num_classes, C]`` tables. ``gamma_init`` is 1 by default (the SNGAN authors' code: at
  initialisation it is unconditional BatchNorm); the DCGAN-family nets pass ``bn_scale_init``,
  N(1, 0.02), like their plain BatchNorms.

  ``x`` is ``[B, ..., C]``, ``labels`` int ``[B]`` in ``[0, num_classes)``; the result has ``x``'s
  shape. ``train`` (call) or ``use_running_average`` (attribute), exactly one of them, picks the
  statistics.
  """
  num_classes: int
  use_running_average: Optional[bool] = None
  momentum: float = 0.9
  epsilon: float = 1e-5
  axis_name: Optional[str] = None
  dtype: Any = None
  gamma_init: Initializer = nn.initializers.ones

  @nn.compact
  def __call__(self, x, labels, train: Optional[bool] = None):
    running = nn.merge_param('use_running_average', self.use_running_average,
                             None if train is None else not train)
    x_hat = nn.BatchNorm(use_running_average=running, momentum=self.momentum,
                         epsilon=self.epsilon, use_scale=False, use_bias=False,
                         axis_name=self.axis_name, dtype=self.dtype)(x)
    c = x.shape[-1]
    gamma = self.param('gamma', self.gamma_init, (self.num_classes, c), jnp.float32)
    beta = self.param('beta', nn.initializers.zeros, (self.num_classes, c), jnp.float32)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
    dtype = self.dtype or x_hat.dtype
    return (gamma[labels].reshape(shape).astype(dtype) * x_hat
            + beta[labels].reshape(shape).astype(dtype))
