"""Drop-in flax layers that run the XLA:CPU kernels where they cover the shape.

``Conv``, ``ConvTranspose``, ``BatchNorm`` and ``Dense`` subclass flax's layers: the same
constructor arguments (plus ``matmul_dtype`` on the three with matmuls), the same parameters and
statistics, created in the same order under the same names, so a checkpoint made with either
restores into the other and ``init`` draws the same values. For the shapes and options in the
table they compute with ``gan_jax.kernels.xla_cpu``; for anything else they are the flax layer
itself (``super().__call__``), e.g. a 3x3 conv, eval-mode BatchNorm, or cross-replica
statistics (``axis_name``).

  layer          covered form                                  kernel
  Conv           4x4, stride 2, padding 1, matmul bf16         conv4x4s2 / conv4x4s2_few_channels
  Conv           VALID, kernel = the input's H x W             full_conv (a dense layer)
  ConvTranspose  4x4, stride 2, padding 2, transpose_kernel    upconv4x4s2
  BatchNorm      training, one replica, float32, scale + bias  batch_norm
  Dense          2-D input, matmul bf16                        bf16_matmul

In float32 the 4x4 stride-2 conv and the dense layer stay XLA's: measured as fast or faster on
XLA:CPU (benchmarks/README.md). ``matmul_dtype`` ('float32' | 'bfloat16',
``gan_jax.kernels.bf16``) picks the kernels' bf16 forms; the flax fallback takes bf16 operands
through the flax hooks that ``gan_jax.kernels.module_defs`` passes with it.
"""

import flax.linen as nn
import jax.numpy as jnp
from flax.linen import dtypes
from flax.linen.linear import canonicalize_padding

from gan_jax.kernels.bf16 import check_matmul_dtype, takes_bf16
from gan_jax.kernels.xla_cpu.batch_norm import batch_norm
from gan_jax.kernels.xla_cpu.conv import conv4x4s2, conv4x4s2_few_channels, full_conv
from gan_jax.kernels.xla_cpu.conv_transpose import upconv4x4s2
from gan_jax.kernels.xla_cpu.matmul import bf16_matmul


def _pairs(value, default=1):
  """Strides or dilations as a 2-tuple (None = ``default``)."""
  value = default if value is None else value
  return (value,) * 2 if isinstance(value, int) else tuple(value)


def _bias(module, y):
  """``y`` plus the module's bias (created after the kernel, as flax does), if it has one."""
  if not module.use_bias:
    return y
  bias = module.param('bias', module.bias_init, (module.features,), module.param_dtype)
  return y + bias.astype(y.dtype)


class Conv(nn.Conv):
  """``nn.Conv``; D's 4x4 stride-2 convs (with bf16 matmuls) and whole-input VALID convs by the
  kernels of ``gan_jax.kernels.xla_cpu.conv``."""
  matmul_dtype: str = 'float32'

  def _form(self, x):
    if (x.ndim != 4 or self.mask is not None or self.feature_group_count != 1
        or self.precision is not None or _pairs(self.input_dilation) != (1, 1)
        or _pairs(self.kernel_dilation) != (1, 1)):
      return None
    kernel_size = tuple(self.kernel_size)
    padding = canonicalize_padding(self.padding, 2)
    padding = padding if isinstance(padding, str) else tuple(map(tuple, padding))
    if (kernel_size == (4, 4) and _pairs(self.strides) == (2, 2) and padding == ((1, 1),) * 2
        and x.shape[1] % 2 == 0 and x.shape[2] % 2 == 0 and self.matmul_dtype == 'bfloat16'):
      return 'im2col'
    if kernel_size == x.shape[1:3] and padding in ('VALID', ((0, 0),) * 2):
      return 'full'
    return None

  @nn.compact
  def __call__(self, inputs):
    check_matmul_dtype(self.matmul_dtype)
    form = self._form(inputs)
    if form is None:
      return super().__call__(inputs)
    cin = inputs.shape[-1]
    kernel = self.param('kernel', self.kernel_init,
                        tuple(self.kernel_size) + (cin, self.features), self.param_dtype)
    x = inputs.astype(self.dtype or inputs.dtype)
    mm = self.matmul_dtype if takes_bf16(self.matmul_dtype, cin) else 'float32'
    if form == 'full':
      y = full_conv(x, kernel, mm)
    elif mm == 'bfloat16':
      y = conv4x4s2(x, kernel, mm)
    else:  # too few channels for bf16 operands to pay (gan_jax.kernels.bf16)
      y = conv4x4s2_few_channels(x, kernel)
    return _bias(self, y)


class ConvTranspose(nn.ConvTranspose):
  """``nn.ConvTranspose``; PyTorch's ``ConvTranspose2d(k=4, s=2, p=1)`` (flax's with
  ``transpose_kernel=True`` and padding ``k - 1 - p = 2``) by ``upconv4x4s2``.

  ``transpose_kernel=True`` makes the kernel ``[kh, kw, Cout, Cin]``, ``kernel[kh, kw, cout, cin]
  = torch_weight[cin, cout, kh, kw]``: PyTorch's weight with the axes in flax's order, no flip,
  the layout the kernels take and return its gradient in."""
  matmul_dtype: str = 'float32'

  def _covered(self, x):
    padding = canonicalize_padding(self.padding, 2)
    padding = padding if isinstance(padding, str) else tuple(map(tuple, padding))
    return (x.ndim == 4 and self.transpose_kernel and tuple(self.kernel_size) == (4, 4)
            and _pairs(self.strides) == (2, 2) and padding == ((2, 2),) * 2
            and _pairs(self.kernel_dilation) == (1, 1) and self.mask is None
            and self.precision is None)

  @nn.compact
  def __call__(self, inputs):
    check_matmul_dtype(self.matmul_dtype)
    if not self._covered(inputs):
      return super().__call__(inputs)
    cin = inputs.shape[-1]
    kernel = self.param('kernel', self.kernel_init, (4, 4, self.features, cin), self.param_dtype)
    x = inputs.astype(self.dtype or inputs.dtype)
    mm = self.matmul_dtype if takes_bf16(self.matmul_dtype, cin) else 'float32'
    return _bias(self, upconv4x4s2(x, kernel, mm))


class BatchNorm(nn.BatchNorm):
  """``nn.BatchNorm``; in training, on float32 inputs with its statistics from this replica
  alone, by ``batch_norm`` (the hand-written VJP). Eval mode, ``axis_name``, other dtypes and
  axes, masks, and BatchNorms without scale or bias are flax's."""

  def _covered(self, x, running, mask):
    return (not running and mask is None and self.axis in (-1, x.ndim - 1)
            and self.axis_name is None and self.axis_index_groups is None
            and self.dtype in (None, jnp.float32) and self.param_dtype == jnp.float32
            and x.dtype == jnp.float32 and self.use_scale and self.use_bias
            and self.use_fast_variance)

  @nn.compact
  def __call__(self, x, use_running_average=None, *, mask=None):
    running = nn.merge_param('use_running_average', self.use_running_average,
                             use_running_average)
    if not self._covered(x, running, mask):
      return super().__call__(x, use_running_average, mask=mask)
    c = x.shape[-1]
    ra_mean = self.variable('batch_stats', 'mean', lambda s: jnp.zeros(s, jnp.float32), (c,))
    ra_var = self.variable('batch_stats', 'var', lambda s: jnp.ones(s, jnp.float32), (c,))
    scale = self.param('scale', self.scale_init, (c,), self.param_dtype)
    bias = self.param('bias', self.bias_init, (c,), self.param_dtype)
    y, mean, var = batch_norm(x, scale, bias, self.epsilon)
    if not self.is_initializing():
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y


class Dense(nn.Dense):
  """``nn.Dense``; with bf16 matmuls, on ``[B, K]`` inputs, by ``bf16_matmul`` (its backward's
  two products take bf16 operands too)."""
  matmul_dtype: str = 'float32'

  @nn.compact
  def __call__(self, inputs):
    if not (takes_bf16(self.matmul_dtype, inputs.shape[-1]) and inputs.ndim == 2
            and self.precision is None):
      return super().__call__(inputs)
    kernel = self.param('kernel', self.kernel_init, (inputs.shape[-1], self.features),
                        self.param_dtype)
    x, kernel = dtypes.promote_dtype(inputs, kernel, dtype=self.dtype)
    return _bias(self, bf16_matmul(x, kernel).astype(x.dtype))
