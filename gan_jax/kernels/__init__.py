"""Which layers the models run on: ``config.model.kernels``, resolved here and nowhere else.

Every model in ``gan_jax.models`` is plain Flax: it takes its convs, transposed convs, norms and
dense layers as ``ModuleDef`` fields that default to ``nn.Conv``, ``nn.ConvTranspose``,
``nn.BatchNorm`` and ``nn.Dense``. ``module_defs`` returns the bundle of those four that
``gan_jax.models.build_models`` hands every model:

  'flax'     flax's layers: XLA's own convolutions (cuDNN's on a GPU).
  'xla_cpu'  ``gan_jax.kernels.xla_cpu``: subclasses of flax's layers that compute a few shapes
             (the DCGAN's) with hand-written VJPs and matmul forms that were measured faster on
             XLA:CPU (benchmarks/README.md), and are flax's layer for every other shape.
  'auto'     'xla_cpu' when JAX's default backend is the CPU, else 'flax'. The kernel set was
             measured to win on XLA:CPU. On GPU and TPU it is unmeasured as a whole for this
             NHWC layout (the BatchNorm VJP and the im2col convs were timed on the CPU only),
             so 'auto' keeps the backend's own layers there. One part was timed on a GPU: an
             H100 ran the DCGAN step 1.8-2.0x faster in float32 with the transposed conv's
             kernel than with lax.conv_transpose (benchmarks/README.md, "GPU: one NVIDIA H100");
             set 'xla_cpu' to use it there.

Both give the same parameter and statistics trees, with the same initial values, so a
checkpoint trained with one restores with the other, and the same function to float32 rounding
(tests/test_model_kernels.py). ``matmul_dtype`` ('float32' | 'bfloat16': bf16 operands,
float32 accumulation) is honoured by both (``gan_jax.kernels.bf16``).
"""

import functools
from typing import Any, NamedTuple, Optional

import flax.linen as nn
import jax

from gan_jax.errors import ConfigError
from gan_jax.kernels import bf16, xla_cpu

KERNELS = ('auto', 'flax', 'xla_cpu')
MATMUL_DTYPES = bf16.MATMUL_DTYPES

ModuleDef = Any


class Layers(NamedTuple):
  """The bundle of layer constructors a model takes (each has the constructor of the flax layer
  named in its field's comment)."""
  conv: ModuleDef            # nn.Conv
  conv_transpose: ModuleDef  # nn.ConvTranspose
  norm: ModuleDef            # nn.BatchNorm
  dense: ModuleDef           # nn.Dense


def resolve(name: str, backend: Optional[str] = None) -> str:
  """``config.model.kernels`` -> 'flax' or 'xla_cpu'. 'auto' is 'xla_cpu' on ``backend``
  'cpu' (default: ``jax.default_backend()``) and 'flax' elsewhere. Raises a ConfigError that
  lists the valid names for anything else."""
  if name not in KERNELS:
    raise ConfigError(f'config.model.kernels={name!r} is not a kernel set; valid: '
                      f'{", ".join(KERNELS)}')
  if name != 'auto':
    return name
  return 'xla_cpu' if (backend or jax.default_backend()) == 'cpu' else 'flax'


def check_matmul_dtype(matmul_dtype: str):
  """A ConfigError listing the valid ``config.model.matmul_dtype`` values for any other."""
  if matmul_dtype not in MATMUL_DTYPES:
    raise ConfigError(f'config.model.matmul_dtype={matmul_dtype!r} is not a matmul dtype; '
                      f'valid: {", ".join(MATMUL_DTYPES)}')


def module_defs(kernels: str = 'auto', matmul_dtype: str = 'float32',
                backend: Optional[str] = None) -> Layers:
  """The layers for ``config.model.kernels`` (``resolve``) whose convs, transposed convs and
  dense layers take ``matmul_dtype`` operands (``gan_jax.kernels.bf16``).

  The same arguments return the same objects, so two builds of a model compare equal (a
  TrainState holds its ``apply_fn``, and jit caches on it).
  """
  check_matmul_dtype(matmul_dtype)
  return _module_defs(resolve(kernels, backend), matmul_dtype)


@functools.lru_cache(maxsize=None)
def _module_defs(name: str, matmul_dtype: str) -> Layers:
  if name == 'flax':
    layers = Layers(nn.Conv, nn.ConvTranspose, nn.BatchNorm, nn.Dense)
    mm = {}
  else:
    layers = Layers(xla_cpu.Conv, xla_cpu.ConvTranspose, xla_cpu.BatchNorm, xla_cpu.Dense)
    mm = {'matmul_dtype': matmul_dtype}
  if matmul_dtype == 'float32':
    return layers
  return Layers(conv=functools.partial(layers.conv, **bf16.CONV, **mm),
                conv_transpose=functools.partial(layers.conv_transpose, **bf16.CONV_TRANSPOSE,
                                                 **mm),
                norm=layers.norm,
                dense=functools.partial(layers.dense, **bf16.DENSE, **mm))
