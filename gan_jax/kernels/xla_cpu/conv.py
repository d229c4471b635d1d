"""Convolutions of the DCGAN's D as matmuls, for XLA:CPU.

``conv4x4s2``: ``Conv(4, s2, p1)`` as im2col matmuls on bf16 operands (D's second conv under
``matmul_dtype='bfloat16'``). ``conv4x4s2_few_channels``: the same form in the input's dtype
for inputs with few channels (D's first conv, one channel). ``full_conv``: a VALID conv whose
kernel covers the whole input (D's last, 7x7 on 7x7) as the dense layer it is. Kernels are
flax's ``[kh, kw, Cin, Cout]``; inputs NHWC.
"""

import functools

import jax
import jax.numpy as jnp

from gan_jax.kernels.xla_cpu.im2col import conv4x4s2_patches, overlap_add
from gan_jax.kernels.xla_cpu.matmul import (apart, matmul, operand_cast, physical_transpose,
                                            written_transpose)


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
  cast = operand_cast(matmul_dtype, x.dtype)
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
  cast = operand_cast(matmul_dtype, x_like.dtype)
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


def full_conv(x, kernel, matmul_dtype: str = 'float32'):
  """``nn.Conv(features, (H, W), padding='VALID')`` on an ``[B, H, W, C]`` input (the kernel
  ``[H, W, C, F]`` covers the whole input: one output pixel), ``-> [B, 1, 1, F]``, as the dense
  layer it is: the flattened input times the flattened kernel (``matmul``). XLA:CPU's
  convolution with one output channel is slow: D's last layer (7x7x128 -> 1, batch 64) takes
  1.5 ms for its gradients as a conv and 0.13 ms as a matmul."""
  b, h, w, c = x.shape
  features = kernel.shape[-1]
  y = matmul(x.reshape(b, h * w * c), kernel.astype(x.dtype).reshape(h * w * c, features),
             matmul_dtype)
  return y.astype(x.dtype).reshape(b, 1, 1, features)
