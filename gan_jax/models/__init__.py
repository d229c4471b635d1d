"""Model registry: one explicit mapping from ``config.model.name`` to a (G, D) builder."""

from typing import Callable, Dict, Tuple

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gan_jax.errors import ConfigError
from gan_jax.models import cond, dcgan, layers, mlp
from gan_jax.models import resnet


def _dcgan(cfg, data_shape, bn_axis_name, dtype):
  if tuple(data_shape[:2]) != (28, 28):
    raise ConfigError(f'config.model.name=dcgan takes 28x28 images, the data has shape '
                      f'{tuple(data_shape)}; use a 28x28 dataset or another model')
  mm = cfg.get('matmul_dtype', 'float32')
  g = dcgan.Generator(channels=data_shape[-1], ngf=cfg.get('ngf', 64), bn_axis_name=bn_axis_name,
                      dtype=dtype, matmul_dtype=mm, upconv=cfg.get('upconv', 'custom'))
  d = dcgan.Discriminator(ndf=cfg.get('ndf', 64), bn_axis_name=bn_axis_name, dtype=dtype,
                          spectral_norm=cfg.get('spectral_norm', False),
                          minibatch_std=cfg.get('minibatch_std', False), matmul_dtype=mm)
  return g, d


def _mlp(cfg, data_shape, bn_axis_name, dtype):
  del bn_axis_name
  mm = cfg.get('matmul_dtype', 'float32')
  g = mlp.Generator(out_shape=tuple(data_shape), hidden=tuple(cfg.get('g_hidden', (1200, 1200))),
                    tanh=cfg.get('g_tanh', True), dtype=dtype, matmul_dtype=mm)
  d = mlp.Discriminator(hidden=tuple(cfg.get('d_hidden', (240, 240))),
                        pieces=cfg.get('d_pieces', 5), input_dropout=cfg.get('d_input_dropout', 0.2),
                        dropout=cfg.get('d_dropout', 0.5),
                        spectral_norm=cfg.get('spectral_norm', False),
                        minibatch_std=cfg.get('minibatch_std', False), dtype=dtype,
                        matmul_dtype=mm)
  return g, d


def _sngan_resnet(cfg, data_shape, bn_axis_name, dtype):
  """SNGAN ResNet: the 32x32 or the 28x28 layout, chosen by the data's image size."""
  size = tuple(data_shape[:2])
  if len(data_shape) != 3 or size not in resnet.LAYOUTS:
    valid = ', '.join(f'{h}x{w}' for h, w in sorted(resnet.LAYOUTS))
    raise ConfigError(f'config.model.name=sngan_resnet takes images of size {valid}; the data has '
                      f'shape {tuple(data_shape)}')
  bottom, num_blocks = resnet.LAYOUTS[size]
  num_classes = cfg.get('num_classes', 0) or 0
  g = resnet.Generator(channels=data_shape[-1], ch=cfg.get('g_ch', 256), bottom=bottom,
                       num_blocks=num_blocks, num_classes=num_classes, bn_axis_name=bn_axis_name,
                       dtype=dtype)
  d = resnet.Discriminator(ch=cfg.get('d_ch', 128), num_classes=num_classes,
                           spectral_norm=cfg.get('spectral_norm', True), dtype=dtype)
  return g, d


def _conditional_dcgan(name, g_cls, d_cls):
  """Builder of a class-conditional 28x28 DCGAN pair (gan_jax/models/cond.py)."""
  def build(cfg, data_shape, bn_axis_name, dtype):
    if tuple(data_shape[:2]) != (28, 28):
      raise ConfigError(f'config.model.name={name} takes 28x28 images, the data has shape '
                        f'{tuple(data_shape)}; use a 28x28 dataset or another model')
    g = g_cls(num_classes=cfg.num_classes, channels=data_shape[-1], ngf=cfg.get('ngf', 64),
              bn_axis_name=bn_axis_name, dtype=dtype)
    d = d_cls(num_classes=cfg.num_classes, ndf=cfg.get('ndf', 64), bn_axis_name=bn_axis_name,
              dtype=dtype, spectral_norm=cfg.get('spectral_norm', False),
              minibatch_std=cfg.get('minibatch_std', False))
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


# Models whose big matmuls take config.model.matmul_dtype (bf16 inputs, f32 accumulation).
MATMUL_DTYPE_MODELS = frozenset({'dcgan', 'mlp'})


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
  stay float32 and the nets return float32 images and logits. ``num_classes`` is the number of
  classes of the data (0 = unlabelled); ``CONDITIONAL_MODELS`` take it (or an explicit
  ``model.num_classes``) and raise a ConfigError without one.
  """
  name = model_config.name
  if name not in MODELS:
    plain = sorted(set(MODELS) - CONDITIONAL_MODELS)
    raise ConfigError(f'config.model.name={name!r} is not a known model; valid: '
                      f'{", ".join(plain)}; class-conditional: '
                      f'{", ".join(sorted(CONDITIONAL_MODELS))}')
  matmul_dtype = model_config.get('matmul_dtype', 'float32')
  if matmul_dtype not in layers.MATMUL_DTYPES:
    raise ConfigError(f'config.model.matmul_dtype={matmul_dtype!r} is not a matmul dtype; valid: '
                      f'{", ".join(layers.MATMUL_DTYPES)}')
  if matmul_dtype != 'float32' and name not in MATMUL_DTYPE_MODELS:
    raise ConfigError(f'config.model.matmul_dtype={matmul_dtype!r} applies to the models '
                      f'{", ".join(sorted(MATMUL_DTYPE_MODELS))}, not {name!r}; leave it float32')
  upconv = model_config.get('upconv', 'custom')
  if upconv not in layers.UPCONV_IMPLS:
    raise ConfigError(f'config.model.upconv={upconv!r} is not an up-conv implementation; valid: '
                      f'{", ".join(layers.UPCONV_IMPLS)}')
  if name in CONDITIONAL_MODELS:
    classes = model_config.get('num_classes') or num_classes or 0
    if classes < 1:
      raise ConfigError(f'config.model.name={name!r} is class-conditional and needs a labelled '
                        'dataset (the data has no class labels); use a labelled dataset or an '
                        f'unconditional model ({", ".join(sorted(set(MODELS) - CONDITIONAL_MODELS))})')
    model_config = ml_collections.ConfigDict(model_config.to_dict())  # an unlocked copy
    model_config.num_classes = int(classes)
  return MODELS[name](model_config, tuple(data_shape), bn_axis_name, compute_dtype(dtype))
