"""Matmuls with the operand layouts and dtypes XLA:CPU runs fastest, and a fusion barrier.

``bf16_matmul``: bf16 operands, float32 accumulation, forward and both gradients.
``to_bf16``: the rounding to bf16 as integer ops. ``physical_transpose`` and
``written_transpose``: a transpose written out, not folded into its consumers. ``apart``: a
function compiled as a computation of its own. The measurements behind each are in
benchmarks/README.md.
"""

import jax
import jax.numpy as jnp

from gan_jax.kernels.bf16 import check_matmul_dtype


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
  twice (``overlap_add`` in the transposed conv's tap form). An ``optimization_barrier`` stops
  neither. The branch of a conditional is a computation of its own; both branches here are
  ``f``, so the predicate only has to be unknown to the compiler: the bits of one element of
  ``x`` OR 1, never 0. Only on the CPU: XLA:GPU reads a conditional's predicate back to the
  host, a sync per call, so elsewhere (and for an empty ``x``) this is ``f(x)`` as it stands."""
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


def matmul(a, b, matmul_dtype: str = 'float32'):
  """``a @ b`` for 2-D operands: ``jnp.dot``, or ``bf16_matmul`` when ``matmul_dtype`` is
  'bfloat16' (the result is then float32 whatever the operands' dtype)."""
  check_matmul_dtype(matmul_dtype)
  if matmul_dtype == 'bfloat16':
    return bf16_matmul(a, b)
  return jnp.dot(a, b)


def operand_cast(matmul_dtype: str, like):
  """The cast of the custom VJPs' matmul operands: ``to_bf16`` for 'bfloat16', else to ``like``."""
  return to_bf16 if matmul_dtype == 'bfloat16' else (lambda t: t.astype(like))
