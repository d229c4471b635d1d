"""Layers shared by the GAN models."""

import functools
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

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


def to_bf16(x):
  """``x.astype(bfloat16)`` (round to nearest even) as integer ops on the float32 bits: one
  vectorised loop fusion, ~3.5x faster than XLA:CPU's convert of a 1200x1200 weight. NaNs stay
  NaN (a bare bit trick can round a NaN to Inf or to 0, and hide it from the NaN watch)."""
  if x.dtype == jnp.bfloat16:
    return x.astype(jnp.bfloat16)
  u = jax.lax.bitcast_convert_type(x.astype(jnp.float32), jnp.uint32)
  u = (u + (jnp.uint32(0x7FFF) + ((u >> 16) & jnp.uint32(1)))) >> 16
  y = jax.lax.bitcast_convert_type(u.astype(jnp.uint16), jnp.bfloat16)
  return jnp.where(jnp.isnan(x), jnp.asarray(jnp.nan, jnp.bfloat16), y)


def physical_transpose(a):
  """``a.T`` for 2-D ``a``, written out row-major. XLA would otherwise fold the transpose into
  the consuming dot as a transposed operand, which XLA:CPU's bf16 dot runs at ~half speed
  (``[1200, 64] @ [64, 1200]``: 0.52 ms against 1.19 ms)."""
  flat = jax.lax.optimization_barrier(a.T.reshape(-1))
  return flat.reshape(a.shape[::-1])


def apart(f, x):
  """``f(x)``, compiled as a computation of its own: XLA fuses none of it into the ops around it,
  and its result is written out once, in row-major order, before any consumer reads it.

  XLA:CPU otherwise fuses such data movement into its consumers, one copy per consumer, with
  the layout the consumers ask for: a transpose into each of Adam's three loop fusions, read a
  column at a time (``written_transpose``); a col2im split over six fusions, its last pass run
  twice (``overlap_add`` in ``upconv4x4s2_taps``). An ``optimization_barrier`` stops neither.
  The branch of a conditional is a computation of its own; both branches here are ``f``, so the
  predicate only has to be unknown to the compiler: the bits of one element of ``x`` OR 1,
  never 0. Only on the CPU: XLA:GPU reads a conditional's predicate back to the host, a sync per
  call, so elsewhere (and for an empty ``x``) this is ``f(x)`` as it stands."""
  if jax.default_backend() != 'cpu' or x.size == 0:
    return f(x)
  bits = jax.lax.bitcast_convert_type(x.reshape(-1)[0].astype(jnp.float32), jnp.uint32)
  return jax.lax.cond((bits | 1) != 0, f, f, x)


def written_transpose(a, shape):
  """``a.T.reshape(shape)`` for 2-D ``a``, transposed once into its own row-major array
  (``apart``) for elementwise consumers. D's conv weight gradient (``[128, 1024]``) fused as a
  transpose into Adam's three loop fusions, read a column at a time, took 1.5 ms of Adam's
  time, against 0.3 ms in row-major order and 0.05 ms for the transpose alone."""
  return apart(lambda v: v.T.reshape(shape), a)


def _bf16_dot(a, b):
  return jnp.dot(to_bf16(a), to_bf16(b), preferred_element_type=jnp.float32)


def _bf16_matmul_fwd(a, b):
  a16, b16 = to_bf16(a), to_bf16(b)
  # Zero-size arrays carry the operands' dtypes (residuals must be arrays).
  return _bf16_dot(a16, b16), (a16, b16, jnp.zeros((0,), a.dtype), jnp.zeros((0,), b.dtype))


def _bf16_matmul_bwd(res, g):
  a16, b16, a_like, b_like = res
  g16 = to_bf16(g)
  # da = g b^T as a dot_general contracting both operands' last axes (XLA:CPU runs this "NT"
  # product at the speed of the forward; jnp.dot(g, b.T) runs at half), db = a^T g with a^T
  # written out (physical_transpose).
  da = jax.lax.dot_general(g16, b16, (((1,), (1,)), ((), ())), preferred_element_type=jnp.float32)
  db = _bf16_dot(physical_transpose(a16), g16)
  return da.astype(a_like.dtype), db.astype(b_like.dtype)


bf16_matmul.defvjp(_bf16_matmul_fwd, _bf16_matmul_bwd)


def check_matmul_dtype(matmul_dtype: str):
  if matmul_dtype not in MATMUL_DTYPES:
    raise ValueError(f'matmul_dtype={matmul_dtype!r}; valid: {", ".join(MATMUL_DTYPES)}')


def matmul(a, b, matmul_dtype: str = 'float32'):
  """``a @ b`` for 2-D operands: ``jnp.dot``, or ``bf16_matmul`` when ``matmul_dtype`` is
  'bfloat16' (the result is then float32 whatever the operands' dtype)."""
  check_matmul_dtype(matmul_dtype)
  if matmul_dtype == 'bfloat16':
    return bf16_matmul(a, b)
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


# Per output phase of the tap-plane form: (first tap row in the 1-padded tap grid, kernel index
# of each of its 2 taps). Per axis, y[2m] = t[m-1, k=3] + t[m, k=1], y[2m+1] = t[m, k=2] + t[m+1, k=0].
_TAPS = ((0, (3, 1)), (1, (2, 0)))

# The window form: the 2x2 output block (2m-1, 2m) per axis comes from the input window
# (x[m-1], x[m]): y[2m-1] = x[m-1] W[2] + x[m] W[0], y[2m] = x[m-1] W[3] + x[m] W[1], i.e.
# W[_WINDOW_TAP[a][i]] for output offset a and window position i; m runs over 0..H.
_WINDOW_TAP = ((2, 0), (3, 1))

# Output channels from which the window form runs the forward (measured on XLA:CPU, batch 64:
# 7x7x256 -> 14x14x128 forward 22 ms against 51 ms in the tap form; at 14x14x128 -> 28x28x1
# the tap form is 7x faster).
WINDOW_FORWARD_MIN_FEATURES = 16


def upconv4x4s2_taps(x, kernel, matmul_dtype: str = 'float32'):
  """ConvTranspose(4, stride 2, padding 1) as one matmul to all 16 taps, then col2im.

  ``t = x @ W`` (``[B*H*W, Cin] @ [Cin, 16*Cout]``) takes every input pixel to every kernel tap;
  each output phase then sums four shifted tap planes. Forward, input gradient and weight
  gradient are each one large matmul with exactly the transposed conv's FLOPs. XLA's own
  transpose of the overlap-add is slow on XLA:CPU, hence ``upconv4x4s2`` below (this forward
  with bf16 matmuls or few output channels, else the window form; ``tap_cotangent`` backward).
  """
  b, h, w, cin = x.shape
  cout = kernel.shape[-1]
  w_flat = kernel.astype(x.dtype).transpose(2, 0, 1, 3).reshape(cin, 16 * cout)
  t = matmul(x.reshape(b * h * w, cin), w_flat, matmul_dtype)
  return apart(overlap_add, t.astype(x.dtype).reshape(b, h, w, 4, 4, cout))


def shift2d(p, dh: int, dw: int):
  """``p [B, H, W, C] -> q`` with ``q[:, m, n] = p[:, m + dh, n + dw]`` (zero outside ``p``),
  ``dh, dw`` in {-1, 0, 1}: a slice and a pad of one plane, which XLA fuses into the consumer."""
  _, h, w, _ = p.shape
  p = p[:, max(dh, 0):h + min(dh, 0), max(dw, 0):w + min(dw, 0), :]
  return jnp.pad(p, ((0, 0), (max(-dh, 0), max(dh, 0)), (max(-dw, 0), max(dw, 0)), (0, 0)))


def overlap_add(t):
  """``t [B, H, W, 4, 4, C] -> [B, 2H, 2W, C]``: ``y[2i - 1 + kh, 2j - 1 + kw] += t[b, i, j, kh,
  kw]`` (taps falling outside are dropped), summed per output phase from four shifted tap
  planes. The col2im of a 4x4 stride-2 padding-1 conv, and the tap form's last step.

  Each tap plane is shifted on its own (``shift2d``) rather than slicing one zero-padded copy
  of ``t``: XLA:CPU materialised that padded copy (1.65x the bytes of ``t``), and the whole
  col2im ran 3.4 ms instead of 0.75 at ``[64, 7, 7, 4, 4, 128]`` (bit-identical results)."""
  b, h, w, _, _, c = t.shape
  rows = []
  for ra, ka in _TAPS:
    cols = []
    for rc, kc in _TAPS:
      cols.append(sum(shift2d(t[:, :, :, ka[i], kc[j], :], ra + i - 1, rc + j - 1)
                      for i in range(2) for j in range(2)))
    rows.append(jnp.stack(cols, axis=3))  # [B, H, W, 2 (col phase), C]
  return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, c)  # interleave the phases


def window_kernel(kernel):
  """``[4, 4, Cin, Cout] -> [2, 2, Cin, 4 Cout]``: the 2x2 conv kernel of the window form, its
  output channels ordered (row offset, column offset, Cout). Every tap of ``kernel`` appears in
  it exactly once."""
  cin, cout = kernel.shape[2:]
  tap = np.array(_WINDOW_TAP).T  # [window position i, output offset a] -> kernel index
  k = kernel[tap[:, :, None, None], tap[None, None, :, :]]  # [i, a, j, c, Cin, Cout]
  return k.transpose(0, 2, 4, 1, 3, 5).reshape(2, 2, cin, 4 * cout)


def upconv4x4s2_windows(x, kernel):
  """ConvTranspose(4, stride 2, padding 1) as a 2x2 convolution of the 1-padded input to
  ``4 Cout`` channels (one 2x2 output block per input window), depth-to-space, crop one pixel.

  1.31x the FLOPs at 7x7 (``(H+1)^2`` windows for ``H^2`` pixels), but XLA:CPU's forward
  convolution runs near the matmul roofline and there is no overlap-add. Its autodiff is not
  usable on XLA:CPU (the 2x2 conv's kernel gradient: 4.5 s at batch 64), so ``upconv4x4s2``
  takes its gradients in the tap form instead.
  """
  b, h, w, _ = x.shape
  cout = kernel.shape[-1]
  o = jax.lax.conv_general_dilated(x, window_kernel(kernel.astype(x.dtype)), (1, 1),
                                   ((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  o = o.reshape(b, h + 1, w + 1, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
  return o.reshape(b, 2 * h + 2, 2 * w + 2, cout)[:, 1:-1, 1:-1, :]


def tap_cotangent(g):
  """``g [B, 2H, 2W, C] -> [B, H, W, 4, 4, C]``: the adjoint of the tap form's overlap-add,
  ``t_bar[b, i, j, kh, kw] = g[b, 2i - 1 + kh, 2j - 1 + kw]`` (zero outside ``g``), i.e. the
  im2col patches of a 4x4 stride-2 padding-1 conv of ``g`` (``conv4x4s2_patches``). XLA's own
  transpose of the overlap-add sums 16 padded planes, ~8x slower on XLA:CPU.
  """
  b, hh, ww, c = g.shape
  return conv4x4s2_patches(g).reshape(b, hh // 2, ww // 2, 4, 4, c)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def upconv4x4s2(x, kernel, matmul_dtype: str = 'float32'):
  """ConvTranspose(4, stride 2, padding 1), ``[B,H,W,Cin] x [4,4,Cin,Cout] -> [B,2H,2W,Cout]``:
  the forward of ``upconv4x4s2_windows``, the backward of the tap form (``tap_cotangent``, then
  ``dx = t_bar @ W^T`` and ``dW = x^T @ t_bar``, two large matmuls): the faster of each on
  XLA:CPU, and the same bilinear function, so the same gradients. With ``matmul_dtype``
  'bfloat16' all three products take bf16 operands and accumulate in float32, and the forward
  is the tap form's (one bf16 matmul: XLA:CPU's bf16 convolutions are slower than its float32
  ones)."""
  return _upconv_fwd(x, kernel, matmul_dtype)[0]


def _upconv_fwd(x, kernel, matmul_dtype):
  # The matmul operands, cast once: the backward's products take the same ones (with bf16, the
  # step had converted x and the kernel twice each).
  b, h, w, cin = x.shape
  cout = kernel.shape[-1]
  cast = _operand_cast(matmul_dtype, x.dtype)
  x_c = cast(x)
  w_c = cast(kernel).transpose(2, 0, 1, 3).reshape(cin, 16 * cout)
  res = (x_c, w_c, jnp.zeros((0,), x.dtype), jnp.zeros((0,), kernel.dtype))
  if matmul_dtype == 'bfloat16':
    # upconv4x4s2_taps on the cast operands: one bf16 matmul + overlap-add (12.7 ms against
    # 21.9 for the float32 window conv at 7x7x256 -> 14x14x128, batch 64; DCGAN step +10 %).
    t = jnp.dot(x_c.reshape(b * h * w, cin), w_c, preferred_element_type=jnp.float32)
    return apart(overlap_add, t.astype(x.dtype).reshape(b, h, w, 4, 4, cout)), res
  if cout < WINDOW_FORWARD_MIN_FEATURES:
    # Few output channels: the tap form too (7x faster than the window conv at 14x14x128 ->
    # 28x28x1).
    return upconv4x4s2_taps(x, kernel, matmul_dtype), res
  return upconv4x4s2_windows(x, kernel), res


def _operand_cast(matmul_dtype, like):
  """The cast of the custom VJPs' matmul operands: ``to_bf16`` for 'bfloat16', else to ``like``."""
  return to_bf16 if matmul_dtype == 'bfloat16' else (lambda t: t.astype(like))


def _upconv_bwd(matmul_dtype, res, g):
  x_c, w_c, x_like, k_like = res
  b, h, w, cin = x_c.shape
  cout = w_c.shape[1] // 16
  cast = _operand_cast(matmul_dtype, x_like.dtype)
  t_bar = tap_cotangent(cast(g)).reshape(b * h * w, 16 * cout)
  # dx = t_bar W^T as an "NT" dot_general against W [Cin, 16 Cout], and x^T written out
  # (physical_transpose): the fast layouts of XLA:CPU's bf16 dot (backward 48 -> 26 ms at
  # 7x7x256 -> 14x14x128, batch 64; float32 about the same).
  dx = jax.lax.dot_general(t_bar, w_c, (((1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  dx = dx.astype(x_like.dtype).reshape(x_c.shape)
  x2 = x_c.reshape(b * h * w, cin)
  if 16 * cout < cin:
    # dW^T = t_bar^T x, with t_bar^T built in its transposed layout (conv4x4s2_patches_t):
    # no transpose of the wider x (G's last layer, 14x14x128 -> 28x28x1: XLA:CPU took 10.8 ms
    # to write out x^T at batch 256).
    dw_t = jnp.dot(conv4x4s2_patches_t(cast(g)), x2, preferred_element_type=jnp.float32)
    dw = jax.lax.optimization_barrier(dw_t).T  # [Cin, 16 Cout]
  else:
    dw = jnp.dot(physical_transpose(x2), t_bar, preferred_element_type=jnp.float32)
  return dx, dw.reshape(cin, 4, 4, cout).transpose(1, 2, 0, 3).astype(k_like.dtype)


upconv4x4s2.defvjp(_upconv_fwd, _upconv_bwd)


def upconv4x4s2_lax(x, kernel):
  """The same function through XLA's own transposed convolution (``lax.conv_transpose``, a conv
  with lhs dilation; cuDNN's on GPU). ``conv_transpose`` with ``transpose_kernel`` flips the
  kernel, hence the flip here, and padding ``k - 1 - p = 2`` per side."""
  return jax.lax.conv_transpose(x, kernel.astype(x.dtype)[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=('NHWC', 'HWIO', 'NHWC'), transpose_kernel=False)


# UpConv4x4s2.impl: 'custom' = the window forward + tap-form custom VJP (fast on XLA:CPU);
# 'lax' = lax.conv_transpose and its autodiff (the backend's own transposed conv).
UPCONV_IMPLS = ('custom', 'lax')


def conv4x4s2_patches(x):
  """``x [B, 2H, 2W, C] -> [B*H*W, 16 C]``: the patches of a 4x4, stride 2, padding 1 conv
  (im2col), ordered (kh, kw, C). ``tap_cotangent`` is the same array.

  One pass: with the 1-padded input viewed as ``[B, 2H+2, W+1, 2C]`` (column pairs), a patch
  row is 8 runs of ``2C`` contiguous elements, ``(kh, kw // 2)`` -> padded row ``2i + kh``,
  column pair ``j + kw // 2``. The 8 strided slices are stacked on the second-to-last axis,
  which XLA:CPU emits as one loop fusion copying whole runs: at ``[64, 14, 14, 128]`` 2.4 ->
  0.7 ms against the space-to-depth transpose of four block-shifted slices (and 16 slices +
  a concatenate before that: three passes). The barrier keeps the producer of ``x`` out of the
  fusion, where its elementwise work would run once per patch entry (4x). bf16 ``x`` is moved
  as its uint16 bits: XLA:CPU widens bf16 data movement to float32 and rounds back."""
  b, hh, ww, c = x.shape
  h, w = hh // 2, ww // 2
  bits = x.dtype == jnp.bfloat16
  u = jax.lax.bitcast_convert_type(x, jnp.uint16) if bits else x
  u = jax.lax.optimization_barrier(u)
  s = jnp.pad(u, ((0, 0), (1, 1), (1, 1), (0, 0)))  # bits 0 are +0.0 in bf16
  s = s.reshape(b, hh + 2, w + 1, 2 * c)
  runs = [s[:, kh:kh + hh:2, a:a + w, :] for kh in range(4) for a in range(2)]
  p = jnp.stack(runs, axis=-2).reshape(b * h * w, 16 * c)
  return jax.lax.bitcast_convert_type(p, jnp.bfloat16) if bits else p


def conv4x4s2_patches_t(x):
  """``x [B, 2H, 2W, C] -> [16 C, B*H*W]``: ``conv4x4s2_patches(x).T``, built in that layout
  (channels to the front first, then 16 strided slices stacked on the leading axis), so no
  transpose of the patches is written out. Cheap where ``C`` is small (G's last layer: 1)."""
  b, hh, ww, c = x.shape
  h, w = hh // 2, ww // 2
  bits = x.dtype == jnp.bfloat16
  u = jax.lax.bitcast_convert_type(x, jnp.uint16) if bits else x
  up = jnp.pad(u.transpose(3, 0, 1, 2), ((0, 0), (0, 0), (1, 1), (1, 1)))  # [C, B, 2H+2, 2W+2]
  rows = [up[:, :, kh:kh + 2 * h:2, kw:kw + 2 * w:2] for kh in range(4) for kw in range(4)]
  p = jnp.stack(rows).reshape(16 * c, b * h * w)
  return jax.lax.bitcast_convert_type(p, jnp.bfloat16) if bits else p


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv4x4s2(x, kernel, matmul_dtype: str = 'float32'):
  """Conv, kernel 4, stride 2, padding 1: ``[B,2H,2W,Cin] x [4,4,Cin,Cout] -> [B,H,W,Cout]``,
  the function of ``nn.Conv(Cout, (4, 4), 2, padding=1)``, as three matmuls with the layouts
  XLA:CPU's dot runs fastest: forward ``P W`` (P = ``conv4x4s2_patches(x)``), weight gradient
  ``(g^T P)^T`` (g^T written out: ``P^T g`` runs ~3.5x slower), input gradient
  ``overlap_add(g W^T)`` (an "NT" dot_general, then col2im). With ``matmul_dtype`` 'bfloat16'
  the matmuls take bf16 operands (``to_bf16``) and accumulate in float32: at batch 64,
  14x14x64 -> 7x7x128, forward and backward ~2x faster than XLA's float32 convolution."""
  return _conv_fwd(x, kernel, matmul_dtype)[0]


def _conv_fwd(x, kernel, matmul_dtype):
  b, hh, ww, cin = x.shape
  cout = kernel.shape[-1]
  cast = _operand_cast(matmul_dtype, x.dtype)
  p = conv4x4s2_patches(cast(x))
  y = jnp.dot(p, cast(kernel).reshape(16 * cin, cout), preferred_element_type=jnp.float32)
  return y.astype(x.dtype).reshape(b, hh // 2, ww // 2, cout), (p, kernel, jnp.zeros((0,), x.dtype))


def _conv_input_grad(g2, w2, out_shape, dtype, **dot_kwargs):
  """The input gradient ``[B, 2H, 2W, Cin]`` (in ``dtype``) of a 4x4 stride-2 padding-1 conv,
  from its output cotangent ``g2`` (``[B H W, Cout]``) and kernel ``w2`` (``[16 Cin, Cout]``):
  the taps ``g2 w2^T`` (an "NT" dot_general), reshaped to ``out_shape`` ``(B, H, W, 4, 4,
  Cin)``, and their col2im, compiled apart (``apart``)."""
  dp = jax.lax.dot_general(g2, w2, (((1,), (1,)), ((), ())), **dot_kwargs)
  return apart(overlap_add, dp.astype(dtype).reshape(out_shape))


def _conv_bwd(matmul_dtype, res, g):
  p, kernel, x_like = res
  b, h, w, cout = g.shape
  cin = kernel.shape[2]
  cast = _operand_cast(matmul_dtype, x_like.dtype)
  g2 = cast(g).reshape(b * h * w, cout)
  dw_t = jnp.dot(physical_transpose(g2), p, preferred_element_type=jnp.float32)  # [Cout, 16 Cin]
  # The barrier keeps XLA from folding the transpose below into the dot as (P^T g), a layout
  # XLA:CPU has no bf16 kernel for.
  dw_t = jax.lax.optimization_barrier(dw_t)
  dx = _conv_input_grad(g2, cast(kernel).reshape(16 * cin, cout), (b, h, w, 4, 4, cin),
                        x_like.dtype, preferred_element_type=jnp.float32)
  # [16 Cin, Cout] in its own array: Adam's fusions would read dw_t a column at a time.
  dw = written_transpose(dw_t, (4, 4, cin, cout))
  return dx, dw.astype(kernel.dtype)


conv4x4s2.defvjp(_conv_fwd, _conv_bwd)


@jax.custom_vjp
def conv4x4s2_few_channels(x, kernel):
  """The 4x4 stride-2 padding-1 conv for inputs with few channels (D's first layer: one), in
  the input's dtype, on the im2col patches ``P`` (``[B H W, 16 Cin]``): forward ``P W``, weight
  gradient ``P^T g`` (contracting the ``B H W`` output pixels), input gradient the col2im of
  ``g W^T``. XLA:CPU's convolutions are slow at these shapes: its K = 16 forward ran at ~30
  GFLOP/s (1 -> 64 channels at batch 256: 1.5 ms alone, 3.3 ms in the step, against 1.0 ms for
  ``P W``), its kernel-gradient convolution transposes ``g`` to a batch-as-feature layout first
  (11.6 ms against 6.1 at batch 256, with the LeakyReLU backward in front), and its input
  gradient took 3.1 ms at batch 256 against 1.3. The same function and gradients; XLA drops the
  input gradient where it is unused (D's update) and the weight gradient where that is (G's)."""
  return _few_fwd(x, kernel)[0]


def _few_fwd(x, kernel):
  b, hh, ww, cin = x.shape
  cout = kernel.shape[-1]
  p = conv4x4s2_patches(x)
  y = jnp.dot(p, kernel.astype(x.dtype).reshape(16 * cin, cout))
  return y.reshape(b, hh // 2, ww // 2, cout), (p, kernel, jnp.zeros((0,), x.dtype))


def _few_bwd(res, g):
  p, kernel, x_like = res
  b, h, w, cout = g.shape
  cin = kernel.shape[2]
  g2 = g.reshape(-1, cout)
  # As in conv4x4s2 (XLA's input-gradient convolution: 0.65 / 3.1 ms at batch 64 / 256,
  # against 0.34 / 1.3 ms for this).
  dx = _conv_input_grad(g2, kernel.astype(g.dtype).reshape(16 * cin, cout), (b, h, w, 4, 4, cin),
                        x_like.dtype)
  dw = jnp.einsum('nk,nc->kc', p, g2, preferred_element_type=jnp.float32)
  return dx, dw.reshape(4, 4, cin, cout).astype(kernel.dtype)


conv4x4s2_few_channels.defvjp(_few_fwd, _few_bwd)


# Input channels from which Conv4x4s2 runs as bf16 im2col matmuls (conv4x4s2). Below it (D's
# first conv: 1 channel, K = 16) the layer is conv4x4s2_few_channels: the same im2col form in
# the input's dtype (float32 in the DCGAN).
IM2COL_MIN_CHANNELS = 16


class Conv4x4s2(nn.Module):
  """``nn.Conv(features, (4, 4), 2, padding=1, use_bias=False)`` (the same ``kernel`` param)
  computed by ``conv4x4s2``: im2col matmuls, on bf16 operands with ``matmul_dtype``. D's
  layers use it when ``model.matmul_dtype`` is 'bfloat16'; in float32 XLA's own convolution
  is faster on XLA:CPU and stays."""
  features: int
  kernel_init: Initializer = dcgan_init
  dtype: Any = None
  matmul_dtype: str = 'float32'

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features),
                        jnp.float32)
    check_matmul_dtype(self.matmul_dtype)
    x = x.astype(self.dtype or x.dtype)
    if x.shape[-1] < IM2COL_MIN_CHANNELS:
      return conv4x4s2_few_channels(x, kernel)
    return conv4x4s2(x, kernel, self.matmul_dtype)


class UpConv4x4s2(nn.Module):
  """Transposed convolution, kernel 4, stride 2, padding 1: ``[B,H,W,Cin] -> [B,2H,2W,Cout]``.

  The same function (and the same single 4x4 kernel parameter, ``kernel[kh, kw, cin, cout] =
  torch_weight[cin, cout, kh, kw]``) as PyTorch's ``ConvTranspose2d(cin, cout, 4, 2, 1)``:
  ``y[o] = sum_{i,k : o = 2i - 1 + k} x[i] W[k]`` per spatial axis.

  Why not ``nn.ConvTranspose``: XLA:CPU lowers it to a convolution with lhs dilation, whose
  weight gradient is ~20x slower than it should be (shared/docs/PERF_NOTES.md). Here the
  gradients always come from the tap form (``upconv4x4s2``'s custom VJP: ``tap_cotangent`` and
  two large matmuls). The
  forward is the tap form below ``WINDOW_FORWARD_MIN_FEATURES`` output channels or with
  ``matmul_dtype='bfloat16'`` (then all three matmuls take bf16 operands with float32
  accumulation), else the window form (``upconv4x4s2_windows``). ``impl='lax'`` is XLA's own
  transposed conv instead. ``benchmarks/README.md`` has the measurements behind each choice.
  """
  features: int
  use_bias: bool = False
  kernel_init: Initializer = dcgan_init
  dtype: Any = None
  matmul_dtype: str = 'float32'  # 'bfloat16': bf16_matmul (bf16 inputs, f32 accumulation)
  impl: str = 'custom'  # one of UPCONV_IMPLS; 'lax' ignores matmul_dtype

  @nn.compact
  def __call__(self, x):
    kernel = self.param('kernel', self.kernel_init, (4, 4, x.shape[-1], self.features),
                        jnp.float32)
    x = x.astype(self.dtype or x.dtype)
    check_matmul_dtype(self.matmul_dtype)
    if self.impl not in UPCONV_IMPLS:
      raise ValueError(f'impl={self.impl!r}; valid: {", ".join(UPCONV_IMPLS)}')
    if self.impl == 'lax':
      y = upconv4x4s2_lax(x, kernel)
    else:
      y = upconv4x4s2(x, kernel, self.matmul_dtype)
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros, (self.features,), jnp.float32).astype(
          y.dtype)
    return y


class FullConv(nn.Module):
  """``nn.Conv(features, (H, W), padding='VALID', use_bias=False)`` on an ``[B, H, W, C]`` input
  (the kernel covers the whole input, one output pixel), as the dense layer it is: the flattened
  input times the flattened kernel, with nn.Conv's ``kernel`` param. XLA:CPU's convolution with
  one output channel is slow: D's last layer (7x7x128 -> 1, batch 64) takes 1.5 ms for its
  gradients as a conv and 0.13 ms as a matmul."""
  features: int
  kernel_init: Initializer = dcgan_init
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    b, h, w, c = x.shape
    kernel = self.param('kernel', self.kernel_init, (h, w, c, self.features), jnp.float32)
    x = x.astype(self.dtype or x.dtype)
    y = jnp.dot(x.reshape(b, h * w * c), kernel.astype(x.dtype).reshape(h * w * c, self.features))
    return y.reshape(b, 1, 1, self.features)


def _channel_sums(a, b):
  """(sum a, sum b) over every axis but the last: two reductions, which XLA:CPU hands to
  YNNPACK's reduce kernels (one variadic reduce runs in XLA's own emitter, ~4x slower)."""
  axes = tuple(range(a.ndim - 1))
  return a.sum(axes), b.sum(axes)


def _activation(y, slope: float):
  """ReLU for ``slope`` 0, else LeakyReLU with that negative slope (flax's functions)."""
  return nn.relu(y) if slope == 0 else nn.leaky_relu(y, slope)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_act(x, scale, bias, epsilon: float, slope: float):
  """Training-mode BatchNorm over every axis but the last, then ReLU (``slope`` 0) or LeakyReLU
  (``slope``): ``act((x - mean) * rsqrt(var + epsilon) * scale + bias)`` with the batch's mean
  and biased variance (``E[x^2] - E[x]^2``, as ``nn.BatchNorm``). Returns ``(y, mean, var)``.

  The same function as ``nn.BatchNorm`` followed by the activation, with a hand-written VJP:
  the backward is two channel sums (``sum g``, ``sum g x_hat``) and one elementwise pass for
  ``dx``, where autodiff of the module leaves XLA:CPU five reductions and five elementwise
  passes over the activation (fwd+bwd ``[256, 14, 14, 128]``: 19.2 -> 13.7 ms).
  """
  return _bn_act_fwd(x, scale, bias, epsilon, slope)[0]


def _bn_stats(x):
  n = x.size // x.shape[-1]
  s, s2 = _channel_sums(x, x * x)
  mean = s / n
  return mean, jnp.maximum(0.0, s2 / n - mean * mean)


def _bn_act_fwd(x, scale, bias, epsilon, slope):
  mean, var = _bn_stats(x)
  rstd = jax.lax.rsqrt(var + epsilon)
  y = _activation((x - mean) * (rstd * scale) + bias, slope)
  return (y, mean, var), (x, mean, rstd, scale, bias)


def _bn_act_bwd(epsilon, slope, res, cts):
  g_y, g_mean, g_var = cts
  x, mean, rstd, scale, bias = res
  n = x.size // x.shape[-1]
  x_hat = (x - mean) * rstd
  pre = x_hat * scale + bias
  g = jnp.where(pre > 0, g_y, slope * g_y)
  sum_g, sum_gx = _channel_sums(g, g * x_hat)
  dx = (scale * rstd) * (g - sum_g / n - x_hat * (sum_gx / n))
  # The cotangents of the returned statistics (zero in a GAN step, where they only feed the
  # running averages): d mean / dx = 1/n, d var / dx = 2 (x - mean) / n.
  dx = dx + (g_mean + 2.0 * g_var * (x - mean)) / n
  return dx, sum_gx, sum_g


batch_norm_act.defvjp(_bn_act_fwd, _bn_act_bwd)


class BatchNorm(nn.Module):
  """Training-mode ``act(nn.BatchNorm(momentum, epsilon, scale_init)(x))``, ``act`` ReLU
  (``slope`` 0.0) or LeakyReLU (``slope``), computed by ``batch_norm_act``: the same params
  (``scale``, ``bias``), ``batch_stats`` (``mean``, ``var``, not updated while initialising) and
  flax auto-name (``BatchNorm_k``), so an ``nn.BatchNorm`` in eval mode reads its variables.
  For float32 inputs on one replica; ``bn_act`` picks it or ``nn.BatchNorm``."""
  momentum: float = 0.99
  epsilon: float = 1e-5
  scale_init: Initializer = nn.initializers.ones
  slope: float = 0.0

  @nn.compact
  def __call__(self, x):
    c = x.shape[-1]
    ra_mean = self.variable('batch_stats', 'mean', lambda s: jnp.zeros(s, jnp.float32), (c,))
    ra_var = self.variable('batch_stats', 'var', lambda s: jnp.ones(s, jnp.float32), (c,))
    scale = self.param('scale', self.scale_init, (c,), jnp.float32)
    bias = self.param('bias', nn.initializers.zeros, (c,), jnp.float32)
    y, mean, var = batch_norm_act(x, scale, bias, self.epsilon, self.slope)
    if not self.is_initializing():
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y


def bn_act(x, train: bool, slope: float, momentum: float, epsilon: float, scale_init,
           axis_name: Optional[str] = None, dtype=None):
  """``act(nn.BatchNorm(use_running_average=not train, ...)(x))`` (``act``: ReLU for ``slope``
  0.0, else LeakyReLU). Training on float32 inputs without cross-replica statistics runs
  ``BatchNorm`` (``batch_norm_act``'s fused backward); eval, ``axis_name`` and other dtypes run
  ``nn.BatchNorm``. Both create the same variables under the same name."""
  if train and axis_name is None and dtype is None and x.dtype == jnp.float32:
    return BatchNorm(momentum=momentum, epsilon=epsilon, scale_init=scale_init, slope=slope)(x)
  return _activation(nn.BatchNorm(use_running_average=not train, momentum=momentum,
                                  epsilon=epsilon, scale_init=scale_init, axis_name=axis_name,
                                  dtype=dtype)(x), slope)


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
