"""SNGAN ResNet generator and discriminator (Miyato et al., 2018), optionally class-conditional.

The CIFAR-10 ResNet of "Spectral Normalization for GANs" (its appendix), NHWC:

  G: z -> Dense 4x4x256 -> 3 x ResBlock up (256) -> BN, ReLU -> Conv 3x3 (C) -> tanh   (32x32)
  D: x -> OptimizedBlock down (128) -> ResBlock down (128) -> 2 x ResBlock (128) -> ReLU
       -> sum over H, W -> SN Dense 1                                                 (8x8 last)

and a 28x28 variant for MNIST-sized data: G starts at 7x7 and has 2 up blocks (7 -> 14 -> 28);
D is the same net (its two down blocks take 28 -> 14 -> 7). Widths are ``g_ch`` / ``d_ch`` (256 /
128 in the paper), the same in every block.

64, 128 and 256 px, in the style of BigGAN (Brock et al., 2019): ``n = log2(R/4)`` and per-block
widths from channel multipliers ``mults = (m_0, ..., m_n)`` (G's order, widest first):

  G: z -> Dense 4x4x(g_ch m_0) -> ResBlock up (g_ch m_1) -> ... -> ResBlock up (g_ch m_n)
       -> BN, ReLU -> Conv 3x3 (C) -> tanh                                             (R x R)
  D: x -> OptimizedBlock down (d_ch m_n) -> ResBlock down (d_ch m_{n-1}) -> ...
       -> ResBlock down (d_ch m_1) -> ResBlock (d_ch m_0) -> ReLU -> sum over H, W
       -> SN Dense 1 [+ projection]                                                    (4x4 last)

so G has n up blocks and D n down blocks (one per halving to 4x4) and one more at 4x4.
``CH_MULTS`` holds the defaults, BigGAN's G widths (Brock et al., 2019, appendix B), with D the
mirror of G: 64 px (16, 8, 4, 2, 1), 128 px (16, 16, 8, 4, 2, 1), 256 px
(16, 16, 8, 8, 4, 2, 1), for ``g_ch = d_ch = 64`` (``gan_jax.models`` uses 64 by default at these
sizes: 1024 channels at 4x4). At 32 px ``mults`` (4 entries: the dense layer and the 3 up
blocks; D's 4 blocks take them mirrored) may set the widths of the SNGAN layout; () keeps it.
``LAYOUTS`` maps image sizes to G's start size and number of up blocks, ``D_DOWN`` to D's number
of down blocks.

G's ResBlock:  h = Conv3x3(ReLU(BN(Conv3x3(up(ReLU(BN(x)))))));  x' = h + Conv1x1(up(x))
D's ResBlock:  h = Conv3x3(ReLU(Conv3x3(ReLU(x)))) [-> avgpool];  x' = h + shortcut(x), where the
               shortcut is Conv1x1 then avgpool when the block downsamples or changes width, else x.
D's first ("optimized") block has no ReLU before its first conv, and its shortcut pools first:
               h = avgpool(Conv3x3(ReLU(Conv3x3(x))));  x' = h + Conv1x1(avgpool(x)).
``up`` is 2x nearest-neighbour upsampling, ``avgpool`` 2x2 average pooling. Every layer of D
(convs, the final dense layer, the projection embedding) is spectrally normalised, with one
power iteration per training call (``layers.maybe_sn``). Plain Flax: the convs, BatchNorms and
dense layers are ``conv``, ``norm`` and ``dense`` fields (flax's by default;
``gan_jax.models.build_models`` passes those of ``config.model.kernels``).

Class-conditional (``num_classes > 0``): G's BatchNorms in the blocks become
``ConditionalBatchNorm`` (per-class gamma, beta), and D adds the projection term of
Miyato & Koyama (2018): ``logit(x, y) = psi(phi(x)) + <embed(y), phi(x)>``, with ``phi(x)`` the
pooled features. Signatures, the same as every conditional model's: ``G(z, labels=None,
train=True)`` and ``D(x, labels=None, train=True, return_features=False)``; a conditional net
takes ``labels=None`` only while initialising. Init: Glorot uniform, gain sqrt(2) on the
residual convs and 1 elsewhere, as in the authors' code.
"""

from typing import Any, Optional, Tuple

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.layers import ConditionalBatchNorm, maybe_sn
from gan_jax.models.layers import labels_for as _labels_for

ModuleDef = Any

__all__ = ['CH_MULTS', 'D_DOWN', 'LAYOUTS', 'ConditionalBatchNorm', 'Discriminator', 'Generator']

# Image size (H, W) -> (G's start size, G's number of 2x up blocks).
LAYOUTS = {(32, 32): (4, 3), (28, 28): (7, 2), (64, 64): (4, 4), (128, 128): (4, 5),
           (256, 256): (4, 6)}
# Image size -> D's number of down blocks; D has len(mults) blocks (4 for the SNGAN layouts).
D_DOWN = {(32, 32): 2, (28, 28): 2, (64, 64): 4, (128, 128): 5, (256, 256): 6}
# Image size -> default channel multipliers, G's order (D takes them reversed); () = every block
# g_ch / d_ch wide (the SNGAN layouts).
CH_MULTS = {(32, 32): (), (28, 28): (), (64, 64): (16, 8, 4, 2, 1),
            (128, 128): (16, 16, 8, 4, 2, 1), (256, 256): (16, 16, 8, 8, 4, 2, 1)}

_init = nn.initializers.xavier_uniform()
# Glorot uniform with gain sqrt(2): variance_scaling's scale is the gain squared.
_init_res = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')


def _upsample(x):
  """2x nearest-neighbour upsampling, ``[B, H, W, C] -> [B, 2H, 2W, C]``."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def _avgpool(x):
  return nn.avg_pool(x, (2, 2), strides=(2, 2))


def _conv(conv, features, k, init, dtype, name):
  return conv(features, (k, k), padding=((k // 2, k // 2),) * 2, kernel_init=init, dtype=dtype,
              name=name)


def _bn(norm, num_classes, train, axis_name, dtype, name):
  """BatchNorm, or class-conditional BatchNorm (called with labels) when ``num_classes > 0``."""
  kw = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5, axis_name=axis_name,
            dtype=dtype, name=name)
  if num_classes:
    return ConditionalBatchNorm(num_classes, norm=norm, **kw)
  bn = norm(**kw)
  return lambda x, labels: bn(x)


class GBlock(nn.Module):
  """Generator ResBlock with 2x upsampling: ``[B, H, W, Cin] -> [B, 2H, 2W, features]``."""
  features: int
  num_classes: int = 0
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True):
    norm = lambda name: _bn(self.norm, self.num_classes, train, self.bn_axis_name, self.dtype,
                            name)
    conv = lambda k, init, name: _conv(self.conv, self.features, k, init, self.dtype, name)
    h = _upsample(nn.relu(norm('bn1')(x, labels)))
    h = conv(3, _init_res, 'conv1')(h)
    h = conv(3, _init_res, 'conv2')(nn.relu(norm('bn2')(h, labels)))
    return h + conv(1, _init, 'shortcut')(_upsample(x))


class DBlock(nn.Module):
  """Discriminator ResBlock: ``[B, H, W, Cin] -> [B, H/2, W/2, features]`` when ``downsample``,
  else ``[B, H, W, features]``. ``optimized`` is the first block (input: the image)."""
  features: int
  downsample: bool = True
  optimized: bool = False
  spectral_norm: bool = True
  dtype: Any = None
  conv: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x, train: bool = True):
    sn = lambda layer: maybe_sn(layer, self.spectral_norm, train)
    conv = lambda k, init, name: sn(_conv(self.conv, self.features, k, init, self.dtype, name))
    h = x if self.optimized else nn.relu(x)
    h = conv(3, _init_res, 'conv1')(h)
    h = conv(3, _init_res, 'conv2')(nn.relu(h))
    if self.downsample:
      h = _avgpool(h)
    if self.optimized:
      return h + conv(1, _init, 'shortcut')(_avgpool(x))
    if self.downsample or x.shape[-1] != self.features:
      s = conv(1, _init, 'shortcut')(x)
      return h + (_avgpool(s) if self.downsample else s)
    return h + x


class Generator(nn.Module):
  """``z [B, latent] -> images [B, bottom * 2**num_blocks, same, channels]`` in [-1, 1].

  Attributes:
    channels: image channels C.
    ch: base width (256 in the paper).
    bottom: spatial size of the first feature map (4, or 7 for 28x28).
    num_blocks: number of 2x up blocks (log2(R/4), 2 for 28x28).
    num_classes: > 0 makes G class-conditional (``ConditionalBatchNorm`` in the blocks; then
      ``labels`` are required except while initialising); 0 ignores ``labels``.
    mults: () = every layer ``ch`` wide (SNGAN); else ``num_blocks + 1`` multipliers: the dense
      layer's width ``ch * mults[0]``, block i's ``ch * mults[i]``.
  """
  channels: int = 3
  ch: int = 256
  bottom: int = 4
  num_blocks: int = 3
  num_classes: int = 0
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  dense: ModuleDef = nn.Dense
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm
  mults: Tuple[int, ...] = ()

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    mults = tuple(self.mults) or (1,) * (self.num_blocks + 1)
    if len(mults) != self.num_blocks + 1:
      raise ValueError(f'mults={mults} needs num_blocks + 1 = {self.num_blocks + 1} entries')
    widths = [self.ch * m for m in mults]
    labels = _labels_for(self, labels, z.shape[0]) if self.num_classes else None
    b = z.shape[0]
    x = self.dense(self.bottom * self.bottom * widths[0], kernel_init=_init, dtype=self.dtype,
                   name='dense')(z.reshape(b, -1))
    x = x.reshape(b, self.bottom, self.bottom, widths[0])
    for i in range(self.num_blocks):
      x = GBlock(widths[i + 1], self.num_classes, self.bn_axis_name, self.dtype, self.conv,
                 self.norm, name=f'block{i + 1}')(x, labels, train)
    # The last BN is unconditional, as in the authors' code.
    x = _bn(self.norm, 0, train, self.bn_axis_name, self.dtype, 'bn')(x, None)
    x = _conv(self.conv, self.channels, 3, _init, self.dtype, 'conv_out')(nn.relu(x))
    return jnp.tanh(x.astype(jnp.float32))


class Discriminator(nn.Module):
  """``images [B, H, W, C] -> logits [B]`` (and the pooled features ``[B, ch * mults[-1]]`` with
  ``return_features``: what feature matching matches).

  ``logit = w . phi(x) + b [+ <embed(y), phi(x)>]`` where ``phi(x)`` is the sum over space of
  ReLU of the last block's output. The projection term is there when ``num_classes > 0``; then
  ``labels`` (int ``[B]``) are required except while initialising. With ``num_classes = 0``
  ``labels`` are ignored.

  Attributes:
    ch: base width (128 in the paper).
    num_classes: > 0 adds the projection term (Miyato & Koyama, 2018).
    spectral_norm: spectral normalisation on every layer (on in SNGAN).
    mults: one multiplier per block, input side first: block i is ``ch * mults[i]`` wide. The
      default, 4 blocks of ``ch``, is SNGAN's D.
    num_down: the first ``num_down`` blocks halve H and W (block 1 is the optimized block); the
      others keep it. 2 in SNGAN; ``log2(R/4)`` for the 64-256 px layouts.
  """
  ch: int = 128
  num_classes: int = 0
  spectral_norm: bool = True
  dtype: Any = None
  conv: ModuleDef = nn.Conv
  dense: ModuleDef = nn.Dense
  mults: Tuple[int, ...] = (1, 1, 1, 1)
  num_down: int = 2

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, return_features: bool = False):
    if not 1 <= self.num_down <= len(self.mults):
      raise ValueError(f'num_down={self.num_down} must lie in [1, len(mults)={len(self.mults)}]')
    kw = dict(spectral_norm=self.spectral_norm, dtype=self.dtype, conv=self.conv)
    h = x
    for i, m in enumerate(self.mults):
      h = DBlock(self.ch * m, downsample=i < self.num_down, optimized=i == 0,
                 name=f'block{i + 1}', **kw)(h, train)
    features = jnp.sum(nn.relu(h).astype(jnp.float32), axis=(1, 2))  # [B, ch * mults[-1]]
    logits = maybe_sn(self.dense(1, kernel_init=_init, name='linear'), self.spectral_norm,
                      train)(features)[:, 0]
    if self.num_classes:
      embed = maybe_sn(nn.Embed(self.num_classes, features.shape[-1], embedding_init=_init,
                                name='embed'),
                       self.spectral_norm, train)
      logits = logits + jnp.sum(embed(_labels_for(self, labels, x.shape[0])) * features, axis=-1)
    logits = logits.astype(jnp.float32)
    if return_features:
      return logits, features
    return logits
