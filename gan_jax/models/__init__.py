"""Model registry: one explicit mapping from ``config.model.name`` to a (G, D) builder.

Each builder takes the layer bundles of ``config.model.kernels`` (``gan_jax.kernels``): ``mm``,
whose convs, transposed convs and dense layers take ``config.model.matmul_dtype`` operands, and
``f32``, the same layers in float32, for the layers a model keeps float32.
"""

from typing import Callable, Dict, Tuple

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gan_jax import kernels
from gan_jax.errors import ConfigError
from gan_jax.models import cond, dcgan, mlp
from gan_jax.models import resnet


def _dcgan(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """The 28x28 DCGAN. ``matmul_dtype`` reaches the transposed convs and D's 4x4 convs; the
  dense layer from the latent and D's last conv to the logit stay float32 (~3 % of the step's
  FLOPs, and float32 in the runs that experiments/mnist.py reports)."""
  if tuple(data_shape[:2]) != (28, 28):
    raise ConfigError(f'config.model.name=dcgan takes 28x28 images, the data has shape '
                      f'{tuple(data_shape)}; use a 28x28 dataset or another model')
  g = dcgan.Generator(channels=data_shape[-1], ngf=cfg.get('ngf', 64), bn_axis_name=bn_axis_name,
                      dtype=dtype, dense=f32.dense, conv_transpose=mm.conv_transpose,
                      norm=mm.norm)
  d = dcgan.Discriminator(ndf=cfg.get('ndf', 64), bn_axis_name=bn_axis_name, dtype=dtype,
                          spectral_norm=cfg.get('spectral_norm', False),
                          minibatch_std=cfg.get('minibatch_std', False), conv=mm.conv,
                          norm=mm.norm, head=f32.conv)
  return g, d


def _mlp(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """The MLP GAN: ``matmul_dtype`` reaches every dense layer."""
  del bn_axis_name, f32
  g = mlp.Generator(out_shape=tuple(data_shape), hidden=tuple(cfg.get('g_hidden', (1200, 1200))),
                    tanh=cfg.get('g_tanh', True), dtype=dtype, dense=mm.dense)
  d = mlp.Discriminator(hidden=tuple(cfg.get('d_hidden', (240, 240))),
                        pieces=cfg.get('d_pieces', 5), input_dropout=cfg.get('d_input_dropout', 0.2),
                        dropout=cfg.get('d_dropout', 0.5),
                        spectral_norm=cfg.get('spectral_norm', False),
                        minibatch_std=cfg.get('minibatch_std', False), dtype=dtype,
                        dense=mm.dense)
  return g, d


def _sngan_resnet(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """SNGAN ResNet: the 32x32 or the 28x28 layout, chosen by the data's image size. Its
  ``matmul_dtype`` is float32 (``MATMUL_DTYPE_MODELS``)."""
  del f32  # the same as mm
  size = tuple(data_shape[:2])
  if len(data_shape) != 3 or size not in resnet.LAYOUTS:
    valid = ', '.join(f'{h}x{w}' for h, w in sorted(resnet.LAYOUTS))
    raise ConfigError(f'config.model.name=sngan_resnet takes images of size {valid}; the data has '
                      f'shape {tuple(data_shape)}')
  bottom, num_blocks = resnet.LAYOUTS[size]
  num_classes = cfg.get('num_classes', 0) or 0
  g = resnet.Generator(channels=data_shape[-1], ch=cfg.get('g_ch', 256), bottom=bottom,
                       num_blocks=num_blocks, num_classes=num_classes, bn_axis_name=bn_axis_name,
                       dtype=dtype, dense=mm.dense, conv=mm.conv, norm=mm.norm)
  d = resnet.Discriminator(ch=cfg.get('d_ch', 128), num_classes=num_classes,
                           spectral_norm=cfg.get('spectral_norm', True), dtype=dtype,
                           conv=mm.conv, dense=mm.dense)
  return g, d


def _conditional_dcgan(name, g_cls, d_cls):
  """Builder of a class-conditional 28x28 DCGAN pair (gan_jax/models/cond.py); its layers take
  ``matmul_dtype`` as the DCGAN's do (``_dcgan``)."""
  def build(cfg, data_shape, bn_axis_name, dtype, mm, f32):
    if tuple(data_shape[:2]) != (28, 28):
      raise ConfigError(f'config.model.name={name} takes 28x28 images, the data has shape '
                        f'{tuple(data_shape)}; use a 28x28 dataset or another model')
    g = g_cls(num_classes=cfg.num_classes, channels=data_shape[-1], ngf=cfg.get('ngf', 64),
              bn_axis_name=bn_axis_name, dtype=dtype, dense=f32.dense,
              conv_transpose=mm.conv_transpose, norm=mm.norm)
    # The projection D's dense layers (psi, the embedding) are its head: float32, like the
    # DCGAN D's last conv.
    layers = dict(dense=f32.dense) if d_cls is cond.ProjectionDiscriminator else dict(head=f32.conv)
    d = d_cls(num_classes=cfg.num_classes, ndf=cfg.get('ndf', 64), bn_axis_name=bn_axis_name,
              dtype=dtype, spectral_norm=cfg.get('spectral_norm', False),
              minibatch_std=cfg.get('minibatch_std', False), conv=mm.conv, norm=mm.norm, **layers)
    return g, d
  return build


MODELS: Dict[str, Callable[..., Tuple[nn.Module, nn.Module]]] = {
    'dcgan': _dcgan,
    'mlp': _mlp,
    'sngan_resnet': _sngan_resnet,
    # G with class-conditional BatchNorm, projection D (Miyato & Koyama, 2018).
    'dcgan_cbn_proj': _conditional_dcgan('dcgan_cbn_proj', cond.CBNGenerator,
                                         cond.ProjectionDiscriminator),
    # cGAN (Mirza & Osindero, 2014): one-hot label concatenated to z and to D's input channels.
    'dcgan_concat': _conditional_dcgan('dcgan_concat', cond.ConcatGenerator,
                                       cond.ConcatDiscriminator),
    # The concat G with the projection D.
    'dcgan_concat_proj': _conditional_dcgan('dcgan_concat_proj', cond.ConcatGenerator,
                                            cond.ProjectionDiscriminator),
}


# Models that always condition on class labels: build_models hands their builders the data's
# number of classes as cfg.num_classes (unless the config sets model.num_classes) and refuses
# unlabelled data. Their modules expose ``num_classes``; the trainer feeds labels to any G
# whose ``num_classes`` is > 0.
CONDITIONAL_MODELS = frozenset({'dcgan_cbn_proj', 'dcgan_concat', 'dcgan_concat_proj'})


# Models whose big matmuls take config.model.matmul_dtype (bf16 operands, f32 accumulation;
# gan_jax.kernels.bf16). Not sngan_resnet: its 3x3 convs would take bf16 operands only through
# XLA's bf16 convolutions, slower than its float32 ones on XLA:CPU (benchmarks/README.md) and
# unmeasured elsewhere; on a GPU/TPU config.compute_dtype is its lever.
MATMUL_DTYPE_MODELS = frozenset({'dcgan', 'mlp'}) | CONDITIONAL_MODELS


COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}


def compute_dtype(name: str):
  """The jnp dtype for ``config.compute_dtype`` (None for float32: the modules' default)."""
  if name not in COMPUTE_DTYPES:
    raise ConfigError(f'config.compute_dtype={name!r} is not a compute dtype; valid: '
                      f'{", ".join(COMPUTE_DTYPES)}')
  return None if name == 'float32' else COMPUTE_DTYPES[name]


def build_models(model_config: ml_collections.ConfigDict, data_shape, bn_axis_name=None,
                 dtype: str = 'float32', num_classes: int = 0) -> Tuple[nn.Module, nn.Module]:
  """(generator, discriminator) for ``model_config.name`` and data of shape ``data_shape``.

  ``dtype`` is ``config.compute_dtype``: activations and matmuls run in it, while parameters
  stay float32 and the nets return float32 images and logits. The layers are those of
  ``model_config.kernels`` ('auto' | 'flax' | 'xla_cpu', ``gan_jax.kernels``; the same
  parameters either way), with ``model_config.matmul_dtype`` ('float32' | 'bfloat16').
  ``num_classes`` is the number of classes of the data (0 = unlabelled); ``CONDITIONAL_MODELS``
  take it (or an explicit ``model.num_classes``) and raise a ConfigError without one.
  """
  name = model_config.name
  if name not in MODELS:
    plain = sorted(set(MODELS) - CONDITIONAL_MODELS)
    raise ConfigError(f'config.model.name={name!r} is not a known model; valid: '
                      f'{", ".join(plain)}; class-conditional: '
                      f'{", ".join(sorted(CONDITIONAL_MODELS))}')
  matmul_dtype = model_config.get('matmul_dtype', 'float32')
  kernels.check_matmul_dtype(matmul_dtype)
  if matmul_dtype != 'float32' and name not in MATMUL_DTYPE_MODELS:
    plain = sorted(MATMUL_DTYPE_MODELS - CONDITIONAL_MODELS)
    raise ConfigError(f'config.model.matmul_dtype={matmul_dtype!r} applies to the models '
                      f'{", ".join(plain)}, not {name!r} (class-conditional: '
                      f'{", ".join(sorted(MATMUL_DTYPE_MODELS & CONDITIONAL_MODELS))}); leave it '
                      'float32')
  mm = kernels.module_defs(model_config.get('kernels', 'auto'), matmul_dtype)
  f32 = kernels.module_defs(model_config.get('kernels', 'auto'), 'float32')
  if name in CONDITIONAL_MODELS:
    classes = model_config.get('num_classes') or num_classes or 0
    if classes < 1:
      raise ConfigError(f'config.model.name={name!r} is class-conditional and needs a labelled '
                        'dataset (the data has no class labels); use a labelled dataset or an '
                        f'unconditional model ({", ".join(sorted(set(MODELS) - CONDITIONAL_MODELS))})')
    model_config = ml_collections.ConfigDict(model_config.to_dict())  # an unlocked copy
    model_config.num_classes = int(classes)
  return MODELS[name](model_config, tuple(data_shape), bn_axis_name, compute_dtype(dtype), mm, f32)
