"""``config.model.matmul_dtype``: bf16 operands with float32 accumulation, in flax's own terms.

With 'bfloat16', a conv, transposed conv or dense layer rounds its input and its kernel to bf16
(round to nearest even) and accumulates and returns float32: ``y = sum_k bf16(x_k) bf16(w_k)``
with exact products and float32 sums. That is the form the bf16 dot units run (AVX512-BF16 and
AMX on a CPU, tensor cores on a GPU); params, activations, statistics and losses stay float32.
Both kernel sets (``gan_jax.kernels``) follow this module, so they compute the same function up
to float32 summation order:

* 'flax': flax's own layers with the hooks below (``CONV``, ``CONV_TRANSPOSE``, ``DENSE``): a
  ``promote_dtype`` that casts the operands (``promote_operands``) and a ``preferred_element_type``
  of float32 on the product.
* 'xla_cpu': the same hooks for the shapes its kernels do not cover, and for those it does, the
  kernels' own bf16 matmuls (``gan_jax.kernels.xla_cpu.matmul.bf16_matmul``).

A layer whose input has fewer than ``MIN_CHANNELS`` channels keeps its operands as they are
(``takes_bf16``): its products are too short for the bf16 units to pay (D's first conv sums 16
terms on a one-channel image), and rounding an image's few channels to 8 significant bits would
be the largest error of the layer.
"""

import functools

import jax
import jax.numpy as jnp
from flax.linen import dtypes

MATMUL_DTYPES = ('float32', 'bfloat16')

# Input channels (the contraction's width per kernel tap) from which a layer takes bf16 operands.
MIN_CHANNELS = 16


def check_matmul_dtype(matmul_dtype: str):
  if matmul_dtype not in MATMUL_DTYPES:
    raise ValueError(f'matmul_dtype={matmul_dtype!r}; valid: {", ".join(MATMUL_DTYPES)}')


def takes_bf16(matmul_dtype: str, channels: int) -> bool:
  """Whether a layer with ``channels`` input channels rounds its operands to bf16."""
  check_matmul_dtype(matmul_dtype)
  return matmul_dtype == 'bfloat16' and channels >= MIN_CHANNELS


def promote_operands(inputs, kernel, *rest, dtype=None, inexact=True):
  """flax's ``promote_dtype`` hook for matmul_dtype 'bfloat16': ``inputs`` and ``kernel`` to
  bf16 when ``takes_bf16`` (the bias, if any, to ``dtype`` or float32, so that it adds to the
  float32 product in float32), else flax's own promotion."""
  if inputs.shape[-1] < MIN_CHANNELS:
    return dtypes.promote_dtype(inputs, kernel, *rest, dtype=dtype, inexact=inexact)
  rest = [None if r is None else jnp.asarray(r, dtype or jnp.float32) for r in rest]
  return [jnp.asarray(inputs, jnp.bfloat16), jnp.asarray(kernel, jnp.bfloat16), *rest]


_F32 = dict(preferred_element_type=jnp.float32)

# The layers' keyword arguments for matmul_dtype 'bfloat16' (each gives float32 outputs).
CONV = dict(promote_dtype=promote_operands,
            conv_general_dilated=functools.partial(jax.lax.conv_general_dilated, **_F32))
CONV_TRANSPOSE = dict(promote_dtype=promote_operands, **_F32)
DENSE = dict(promote_dtype=promote_operands, dot_general=functools.partial(jax.lax.dot_general,
                                                                          **_F32))
