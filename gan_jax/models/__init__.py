"""Model registry: one explicit mapping from ``config.model.name`` to a (G, D) builder.

Each builder takes the layer bundles of ``config.model.kernels`` (``gan_jax.kernels``): ``mm``,
whose convs, transposed convs and dense layers take ``config.model.matmul_dtype`` operands, and
``f32``, the same layers in float32, for the layers a model keeps float32.

Image sizes: the DCGANs ('dcgan' and the class-conditional 'dcgan_*') are the 28x28 template
nets (``dcgan.py``, ``cond.py``) on 28x28 data and ``dcgan_scaled`` on square 32, 64, 128 or
256 px data, ``config.model.ch`` wide (64) with ``config.model.ch_mults`` (() = its default
for the size, ``dcgan_scaled.DEFAULT_MULTS``); 'sngan_resnet' takes 28, 32, 64, 128 and 256 px
(``resnet.LAYOUTS``, widths ``g_ch``/``d_ch`` times ``ch_mults``, () = ``resnet.CH_MULTS``).
"""

from typing import Callable, Dict, Tuple

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from gan_jax import kernels
from gan_jax.errors import ConfigError
from gan_jax.models import cond, dcgan, dcgan_scaled, mlp
from gan_jax.models import resnet

SCALED_SIZES = tuple(dcgan_scaled.DEFAULT_MULTS)  # 32, 64, 128, 256: the sizes of dcgan_scaled


def _shape_str(shape):
  return ', '.join(f'{s}x{s}' for s in shape)


def _is_28(data_shape) -> bool:
  return len(data_shape) == 3 and tuple(data_shape[:2]) == (28, 28)


def _scaled_size(name: str, data_shape) -> int:
  """R of square ``[R, R, C]`` data with R in ``SCALED_SIZES``, else a ConfigError."""
  if len(data_shape) != 3 or data_shape[0] != data_shape[1] or data_shape[0] not in SCALED_SIZES:
    raise ConfigError(f'config.model.name={name} takes 28x28 images (the template) or square '
                      f'{_shape_str(SCALED_SIZES)} ones; the data has shape {tuple(data_shape)}')
  return data_shape[0]


def _ch_mults(cfg, name: str, size: str, n: int, default) -> Tuple[int, ...]:
  """``config.model.ch_mults`` as a tuple of ``n`` ints >= 1; () gives ``default``."""
  mults = tuple(cfg.get('ch_mults', ()) or ())
  if not mults:
    return tuple(default)
  if len(mults) != n or not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1
                                for m in mults):
    raise ConfigError(f'config.model.ch_mults={mults} does not fit {name} at {size}: it takes '
                      f'{n} integers >= 1, e.g. {tuple(default)}, or () for that default')
  return mults


def _no_ch_mults(cfg, name: str):
  """A ConfigError when ``config.model.ch_mults`` is set for a 28x28 net, which has fixed
  widths."""
  mults = tuple(cfg.get('ch_mults', ()) or ())
  if mults:
    raise ConfigError(f'config.model.ch_mults={mults} does not apply to {name} on 28x28 data '
                      '(its widths are fixed); set config.model.ch_mults=()')


def _width(cfg, key: str, default: int) -> int:
  v = cfg.get(key, default)
  if v is None:
    return default
  if not isinstance(v, int) or isinstance(v, bool) or v < 1:
    raise ConfigError(f'config.model.{key}={v!r} must be an integer >= 1')
  return v


def _scaled(cfg, data_shape, bn_axis_name, dtype, mm, f32, name, g_cls, num_classes=0):
  """``dcgan_scaled`` G and D for square 32-256 px data: G's dense layer and D's head (and
  the projection's embedding) float32, the (transposed) convs ``matmul_dtype``, as in
  ``_dcgan``. ``g_cls`` is ``dcgan_scaled.Generator`` or ``ConcatGenerator``."""
  size = _scaled_size(name, data_shape)
  mults = _ch_mults(cfg, name, f'{size}x{size}', len(dcgan_scaled.DEFAULT_MULTS[size]),
                    dcgan_scaled.DEFAULT_MULTS[size])
  ch = _width(cfg, 'ch', 64)
  g = g_cls(resolution=size, channels=data_shape[-1], ch=ch, mults=mults,
            num_classes=num_classes, bn_axis_name=bn_axis_name, dtype=dtype, dense=f32.dense,
            conv_transpose=mm.conv_transpose, norm=mm.norm)
  d = dcgan_scaled.Discriminator(resolution=size, ch=ch, mults=mults, num_classes=num_classes,
                                 bn_axis_name=bn_axis_name, dtype=dtype,
                                 spectral_norm=cfg.get('spectral_norm', False),
                                 minibatch_std=cfg.get('minibatch_std', False), conv=mm.conv,
                                 norm=mm.norm, head=f32.conv, dense=f32.dense)
  return g, d


def _dcgan(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """The 28x28 DCGAN, or ``dcgan_scaled`` on 32-256 px data. ``matmul_dtype`` reaches the
  transposed convs and D's 4x4 convs; the dense layer from the latent and D's last conv to the
  logit stay float32 (~3 % of the step's FLOPs, and float32 in the runs that
  experiments/mnist.py reports)."""
  if not _is_28(data_shape):
    return _scaled(cfg, data_shape, bn_axis_name, dtype, mm, f32, 'dcgan',
                   dcgan_scaled.Generator)
  _no_ch_mults(cfg, 'dcgan')
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
  return _mlp_pair(cfg, data_shape, dtype, mm, mlp.Generator, mlp.Discriminator)


def _mlp_concat_proj(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """The MLP GAN told a label: one-hot concatenated to z in G, projection D (mlp.py). The
  projection's embedding is float32; every other dense layer takes ``matmul_dtype``."""
  del bn_axis_name, f32
  return _mlp_pair(cfg, data_shape, dtype, mm, mlp.ConcatGenerator, mlp.ProjectionDiscriminator,
                   num_classes=cfg.num_classes)


def _mlp_pair(cfg, data_shape, dtype, mm, g_cls, d_cls, **cond):
  """G and D of the MLP GAN's family from ``config.model``'s widths; ``cond`` = num_classes."""
  g = g_cls(out_shape=tuple(data_shape), hidden=tuple(cfg.get('g_hidden', (1200, 1200))),
            tanh=cfg.get('g_tanh', True), dtype=dtype, dense=mm.dense, **cond)
  d = d_cls(hidden=tuple(cfg.get('d_hidden', (240, 240))), pieces=cfg.get('d_pieces', 5),
            input_dropout=cfg.get('d_input_dropout', 0.2), dropout=cfg.get('d_dropout', 0.5),
            spectral_norm=cfg.get('spectral_norm', False),
            minibatch_std=cfg.get('minibatch_std', False), dtype=dtype, dense=mm.dense, **cond)
  return g, d


def _sngan_resnet(cfg, data_shape, bn_axis_name, dtype, mm, f32):
  """SNGAN ResNet, the layout of the data's image size (``resnet.LAYOUTS``): 28 and 32 px are
  SNGAN's nets (``g_ch``/``d_ch`` 256/128 in every block, or per block with ``ch_mults`` at 32
  px); 64, 128 and 256 px the BigGAN-style ones (``g_ch``/``d_ch`` 64 times ``ch_mults``,
  () = ``resnet.CH_MULTS``). Its ``matmul_dtype`` is float32 (``MATMUL_DTYPE_MODELS``)."""
  del f32  # the same as mm
  size = tuple(data_shape[:2])
  if len(data_shape) != 3 or size not in resnet.LAYOUTS:
    valid = ', '.join(f'{h}x{w}' for h, w in sorted(resnet.LAYOUTS))
    raise ConfigError(f'config.model.name=sngan_resnet takes images of size {valid}; the data has '
                      f'shape {tuple(data_shape)}')
  bottom, num_blocks = resnet.LAYOUTS[size]
  if size == (28, 28):
    _no_ch_mults(cfg, 'sngan_resnet')
    mults = ()
  elif not cfg.get('ch_mults', ()) and size == (32, 32):
    mults = ()  # SNGAN's net, module for module
  else:
    mults = _ch_mults(cfg, 'sngan_resnet', f'{size[0]}x{size[1]}', num_blocks + 1,
                      resnet.CH_MULTS[size] or (1,) * (num_blocks + 1))
  # SNGAN's widths where every block is as wide; BigGAN's base width 64 with multipliers.
  g_ch, d_ch = (256, 128) if size in ((28, 28), (32, 32)) else (64, 64)
  num_classes = cfg.get('num_classes', 0) or 0
  g = resnet.Generator(channels=data_shape[-1], ch=_width(cfg, 'g_ch', g_ch), bottom=bottom,
                       num_blocks=num_blocks, num_classes=num_classes, bn_axis_name=bn_axis_name,
                       dtype=dtype, dense=mm.dense, conv=mm.conv, norm=mm.norm, mults=mults)
  d_mults = tuple(reversed(mults)) if mults else (1, 1, 1, 1)
  d = resnet.Discriminator(ch=_width(cfg, 'd_ch', d_ch), num_classes=num_classes,
                           spectral_norm=cfg.get('spectral_norm', True), dtype=dtype,
                           conv=mm.conv, dense=mm.dense, mults=d_mults,
                           num_down=resnet.D_DOWN[size])
  return g, d


def _conditional_dcgan(name, g_cls, d_cls, scaled_g_cls=None):
  """Builder of a class-conditional DCGAN pair: the 28x28 nets of gan_jax/models/cond.py on
  28x28 data; on 32-256 px data ``scaled_g_cls`` (a ``dcgan_scaled`` G) with the projection
  ``dcgan_scaled.Discriminator``, or a ConfigError without one. The layers take
  ``matmul_dtype`` as the DCGAN's do (``_dcgan``)."""
  def build(cfg, data_shape, bn_axis_name, dtype, mm, f32):
    if not _is_28(data_shape):
      if scaled_g_cls is None:
        raise ConfigError(
            f'config.model.name={name} takes 28x28 images, the data has shape '
            f'{tuple(data_shape)}; at {_shape_str(SCALED_SIZES)} use dcgan_cbn_proj or '
            'dcgan_concat_proj')
      return _scaled(cfg, data_shape, bn_axis_name, dtype, mm, f32, name, scaled_g_cls,
                     num_classes=cfg.num_classes)
    _no_ch_mults(cfg, name)
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
    # G with class-conditional BatchNorm, projection D (Miyato & Koyama, 2018); at 32-256 px
    # the same pair from dcgan_scaled.
    'dcgan_cbn_proj': _conditional_dcgan('dcgan_cbn_proj', cond.CBNGenerator,
                                         cond.ProjectionDiscriminator, dcgan_scaled.Generator),
    # cGAN (Mirza & Osindero, 2014): one-hot label concatenated to z and to D's input channels.
    # 28x28 only.
    'dcgan_concat': _conditional_dcgan('dcgan_concat', cond.ConcatGenerator,
                                       cond.ConcatDiscriminator),
    # The concat G (one-hot label concatenated to z) with the projection D; at 32-256 px the
    # same pair from dcgan_scaled.
    'dcgan_concat_proj': _conditional_dcgan('dcgan_concat_proj', cond.ConcatGenerator,
                                            cond.ProjectionDiscriminator,
                                            dcgan_scaled.ConcatGenerator),
    # The MLP GAN with the label concatenated to z in G and a projection D (self-conditioning
    # of experiments/mnist_mlp.py).
    'mlp_concat_proj': _mlp_concat_proj,
}


# Models that always condition on class labels: build_models hands their builders the data's
# number of classes as cfg.num_classes (unless the config sets model.num_classes) and refuses
# unlabelled data. Their modules expose ``num_classes``; the trainer feeds labels to any G
# whose ``num_classes`` is > 0.
CONDITIONAL_MODELS = frozenset({'dcgan_cbn_proj', 'dcgan_concat', 'dcgan_concat_proj',
                                'mlp_concat_proj'})


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
