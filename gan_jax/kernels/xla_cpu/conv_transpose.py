"""The transposed convolution of the DCGAN's G, kernel 4, stride 2, padding 1, for XLA:CPU.

PyTorch's ``ConvTranspose2d(cin, cout, 4, 2, 1)``: ``y[o] = sum_{i,k : o = 2i - 1 + k} x[i] W[k]``
per spatial axis. The functions here take the kernel in the layout of flax's ``ConvTranspose``
with ``transpose_kernel=True``, ``[4, 4, Cout, Cin]``: ``kernel[kh, kw, cout, cin] =
torch_weight[cin, cout, kh, kw]``. XLA:CPU lowers ``lax.conv_transpose`` to a convolution with
lhs dilation, whose weight gradient is ~20x slower than it should be
(shared/docs/PERF_NOTES.md); ``upconv4x4s2`` takes its gradients as two large matmuls instead.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.kernels.xla_cpu.im2col import conv4x4s2_patches, conv4x4s2_patches_t, overlap_add
from gan_jax.kernels.xla_cpu.matmul import (apart, matmul, operand_cast, physical_transpose,
                                            written_transpose)

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
  cout = kernel.shape[2]
  w_flat = kernel.astype(x.dtype).transpose(3, 0, 1, 2).reshape(cin, 16 * cout)
  t = matmul(x.reshape(b * h * w, cin), w_flat, matmul_dtype)
  return apart(overlap_add, t.astype(x.dtype).reshape(b, h, w, 4, 4, cout))


def window_kernel(kernel):
  """``[4, 4, Cout, Cin] -> [2, 2, Cin, 4 Cout]``: the 2x2 conv kernel of the window form, its
  output channels ordered (row offset, column offset, Cout). Every tap of ``kernel`` appears in
  it exactly once."""
  kernel = jnp.swapaxes(kernel, 2, 3)
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
  cout = kernel.shape[2]
  o = jax.lax.conv_general_dilated(x, window_kernel(kernel.astype(x.dtype)), (1, 1),
                                   ((1, 1), (1, 1)), dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  o = o.reshape(b, h + 1, w + 1, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5)
  return o.reshape(b, 2 * h + 2, 2 * w + 2, cout)[:, 1:-1, 1:-1, :]


def upconv4x4s2_lax(x, kernel):
  """The same function through XLA's own transposed convolution (``lax.conv_transpose``, a conv
  with lhs dilation; cuDNN's on GPU), as ``nn.ConvTranspose(transpose_kernel=True, padding=2)``
  computes it: ``transpose_kernel`` flips the kernel and swaps its channel axes (the gradient of
  a conv, as PyTorch's layer is), and the padding is ``k - 1 - p = 2`` per side."""
  return jax.lax.conv_transpose(x, kernel.astype(x.dtype), (2, 2), ((2, 2), (2, 2)),
                                dimension_numbers=('NHWC', 'HWIO', 'NHWC'), transpose_kernel=True)


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
  """ConvTranspose(4, stride 2, padding 1), ``[B,H,W,Cin] x [4,4,Cout,Cin] -> [B,2H,2W,Cout]``:
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
  cout = kernel.shape[2]
  cast = operand_cast(matmul_dtype, x.dtype)
  x_c = cast(x)
  w_c = cast(kernel).transpose(3, 0, 1, 2).reshape(cin, 16 * cout)
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


def _upconv_bwd(matmul_dtype, res, g):
  x_c, w_c, x_like, k_like = res
  b, h, w, cin = x_c.shape
  cout = w_c.shape[1] // 16
  cast = operand_cast(matmul_dtype, x_like.dtype)
  t_bar = tap_cotangent(cast(g)).reshape(b * h * w, 16 * cout)
  # dx = t_bar W^T as an "NT" dot_general against W [Cin, 16 Cout], and x^T written out
  # (physical_transpose): the fast layouts of XLA:CPU's bf16 dot (backward 48 -> 26 ms at
  # 7x7x256 -> 14x14x128, batch 64; float32 about the same).
  dx = jax.lax.dot_general(t_bar, w_c, (((1,), (1,)), ((), ())),
                           preferred_element_type=jnp.float32)
  dx = dx.astype(x_like.dtype).reshape(x_c.shape)
  x2 = x_c.reshape(b * h * w, cin)
  if 16 * cout < cin:
    # The kernel's layout [16 Cout, Cin] is dW^T = t_bar^T x, with t_bar^T built in its
    # transposed layout (conv4x4s2_patches_t): no transpose of the wider x (G's last layer,
    # 14x14x128 -> 28x28x1: XLA:CPU took 10.8 ms to write out x^T at batch 256).
    dw = jnp.dot(conv4x4s2_patches_t(cast(g)), x2, preferred_element_type=jnp.float32)
    dw = dw.reshape(4, 4, cout, cin)
  else:
    dw = jnp.dot(physical_transpose(x2), t_bar, preferred_element_type=jnp.float32)
    # [Cin, 16 Cout] to the kernel's [16 Cout, Cin], in its own array: Adam's fusions would
    # read it a column at a time.
    dw = written_transpose(dw, (4, 4, cout, cin))
  return dx, dw.astype(k_like.dtype)


upconv4x4s2.defvjp(_upconv_fwd, _upconv_bwd)
