"""DCGAN for square images of 32, 64, 128 or 256 px (Radford et al., 2016), optionally
class-conditional: the 28x28 template (``dcgan.py``) grown by one stride-2 layer per doubling.

``R = 4 * 2**n`` and the channel multipliers ``mults = (m_0, ..., m_{n-1})`` (``n = log2(R/4)``
entries, widest first; ``DEFAULT_MULTS``) give the nets, NHWC, ``ch`` the base width:

  G: z -> Dense 4*4*ch*m_0 -> BN, ReLU                                                [4, 4]
       -> ConvT 4/2 (ch*m_1) -> BN, ReLU -> ... -> ConvT 4/2 (ch*m_{n-1}) -> BN, ReLU  [R/2, R/2]
       -> ConvT 4/2 (C) -> tanh                                                       [R, R, C]
  D: x -> Conv 4/2 (ch*m_{n-1}) -> LReLU .2                                           [R/2, R/2]
       -> Conv 4/2 (ch*m_{n-2}) -> BN, LReLU .2 -> ... -> Conv 4/2 (ch*m_0) -> BN, LReLU .2 [4, 4]
       -> Conv 4x4 VALID (1) -> logit

so G has ``n`` upsamplings (``UpConv4x4s2_0 .. n-1``) and D ``n`` downsamplings (``Conv_0 .. n-1``;
its head is ``Conv_n``). E.g. 64 px, ``mults = (8, 4, 2, 1)``, ``ch = 64``: G 512@4 -> 256@8 ->
128@16 -> 64@32 -> C@64, and D the mirror. Init: weights ~ N(0, 0.02), BN scale ~ N(1, 0.02).

D's options are the 28x28 D's: ``spectral_norm`` wraps every layer in spectral normalisation
and drops BN (Miyato et al., 2018); ``minibatch_std`` appends the minibatch-stddev plane before
the head; ``return_features`` also returns the last 4x4 feature map, flattened, float32.

Class-conditional (``num_classes > 0``), the recipe of ``cond.py``:

* ``Generator``: every BN becomes a ``ConditionalBatchNorm`` (per-class gamma, beta; shared
  statistics), gamma ~ N(1, 0.02).
* ``ConcatGenerator``: the one-hot label concatenated to z, then the unconditional ``Generator``
  (Mirza & Osindero, 2014; the G of 'dcgan_concat_proj').
* ``Discriminator``: the projection D (Miyato & Koyama, 2018),
  ``logit = psi(h) + <embed(y), phi(x)>``, with ``h`` the last 4x4 feature map, ``psi`` the head
  conv (the unconditional logit) and ``phi(x) = sum_{4x4} h`` the pooled features; ``embed`` is
  a [num_classes, ch*m_0] table (spectrally normalised with ``spectral_norm``). With
  ``embed = 0`` it is the unconditional D.

Signatures, those of every conditional model: ``G(z, labels=None, train=True)`` and
``D(x, labels=None, train=True, return_features=False)``; a conditional net takes
``labels=None`` only while initialising, an unconditional one ignores ``labels``. Images come
back float32 in [-1, 1], logits float32 ``[B]``, whatever ``dtype`` the activations run in.

Plain Flax: the layers are ``ModuleDef`` fields with flax's defaults, which
``gan_jax.models.build_models`` fills from ``config.model.kernels``.
"""

import functools
from typing import Any, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.dcgan import batch_norm, torch_padding
from gan_jax.models.layers import (ConditionalBatchNorm, bn_scale_init, dcgan_init, labels_for,
                                   maybe_sn, minibatch_stddev)

ModuleDef = Any

# Resolution -> channel multipliers, widest (4x4) first: one per stride-2 layer, log2(R / 4).
DEFAULT_MULTS = {32: (4, 2, 1), 64: (8, 4, 2, 1), 128: (16, 8, 4, 2, 1),
                 256: (16, 16, 8, 4, 2, 1)}


def channel_mults(resolution: int, mults: Tuple[int, ...] = ()) -> Tuple[int, ...]:
  """``mults``, or the default for ``resolution`` when empty. ValueError when ``resolution`` is
  not one of ``DEFAULT_MULTS`` or ``mults`` has not ``log2(resolution / 4)`` entries >= 1."""
  if resolution not in DEFAULT_MULTS:
    raise ValueError(f'resolution {resolution} is not one of {", ".join(map(str, DEFAULT_MULTS))}')
  mults = tuple(mults) or DEFAULT_MULTS[resolution]
  n = len(DEFAULT_MULTS[resolution])
  if len(mults) != n or not all(isinstance(m, int) and m >= 1 for m in mults):
    raise ValueError(f'channel multipliers {mults} for {resolution} px: need {n} integers >= 1 '
                     f'(log2({resolution}/4)), e.g. {DEFAULT_MULTS[resolution]}')
  return mults


class Generator(nn.Module):
  """``z [B, latent] (, labels [B]) -> images [B, R, R, channels]`` in [-1, 1].

  Attributes:
    resolution: R, one of 32, 64, 128, 256.
    mults: channel multipliers, widest first (``log2(R/4)`` entries); () = ``DEFAULT_MULTS[R]``.
    ch: base width; layer widths are ``ch * m``.
    num_classes: > 0 makes every BN class-conditional (then ``labels`` are required except
      while initialising); 0 ignores ``labels``.
  """
  resolution: int = 64
  channels: int = 3
  ch: int = 64
  mults: Tuple[int, ...] = ()
  num_classes: int = 0
  bn_axis_name: Optional[str] = None  # set for cross-replica BN statistics under pmap
  dtype: Any = None
  dense: ModuleDef = nn.Dense
  conv_transpose: ModuleDef = nn.ConvTranspose
  norm: ModuleDef = nn.BatchNorm

  def _norm(self, i: int, train: bool):
    """The i-th BN: a callable ``(x, labels) -> x``."""
    if self.num_classes:
      return functools.partial(
          ConditionalBatchNorm(self.num_classes, axis_name=self.bn_axis_name, dtype=self.dtype,
                               gamma_init=bn_scale_init, norm=self.norm,
                               name=f'ConditionalBatchNorm_{i}'), train=train)
    bn = batch_norm(self.norm, train, self.bn_axis_name, self.dtype)(name=f'BatchNorm_{i}')
    return lambda x, labels: bn(x)

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    mults = channel_mults(self.resolution, self.mults)
    b = z.shape[0]
    labels = labels_for(self, labels, b) if self.num_classes else None
    conv_t = functools.partial(self.conv_transpose, kernel_size=(4, 4), strides=(2, 2),
                               padding=torch_padding(4, 1), transpose_kernel=True,
                               use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)
    x = self.dense(4 * 4 * self.ch * mults[0], use_bias=False, kernel_init=dcgan_init,
                   dtype=self.dtype, name='Dense_0')(z.reshape(b, -1))
    x = nn.relu(self._norm(0, train)(x.reshape(b, 4, 4, self.ch * mults[0]), labels))
    for i, m in enumerate(mults[1:]):
      x = conv_t(self.ch * m, name=f'UpConv4x4s2_{i}')(x)
      x = nn.relu(self._norm(i + 1, train)(x, labels))
    x = conv_t(self.channels, name=f'UpConv4x4s2_{len(mults) - 1}')(x)
    return jnp.tanh(x.astype(jnp.float32))


class ConcatGenerator(nn.Module):
  """cGAN G (Mirza & Osindero, 2014): the unconditional ``Generator`` on ``[z, one_hot(y)]``.
  Fields as ``Generator``'s; ``num_classes >= 1``."""
  resolution: int = 64
  channels: int = 3
  ch: int = 64
  mults: Tuple[int, ...] = ()
  num_classes: int = 0
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  dense: ModuleDef = nn.Dense
  conv_transpose: ModuleDef = nn.ConvTranspose
  norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    labels = labels_for(self, labels, z.shape[0])
    y = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
    net = Generator(resolution=self.resolution, channels=self.channels, ch=self.ch,
                    mults=self.mults, bn_axis_name=self.bn_axis_name, dtype=self.dtype,
                    dense=self.dense, conv_transpose=self.conv_transpose, norm=self.norm,
                    name='net')
    return net(jnp.concatenate([z.reshape(z.shape[0], -1), y], axis=-1), train=train)


class Discriminator(nn.Module):
  """``images [B, R, R, C] (, labels [B]) -> logits [B]`` (and the last 4x4 feature map,
  flattened, float32, with ``return_features``).

  Attributes:
    resolution, mults, ch: as ``Generator``'s; D's widths are G's mirrored.
    num_classes: > 0 adds the projection term (then ``labels`` are required except while
      initialising); 0 ignores ``labels``.
    spectral_norm: spectral normalisation on every layer, and no BN.
    minibatch_std: the minibatch-stddev plane before the head.
    head: the last conv's constructor (the builder keeps it float32), ``dense`` the
      projection embedding's.
  """
  resolution: int = 64
  ch: int = 64
  mults: Tuple[int, ...] = ()
  num_classes: int = 0
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  spectral_norm: bool = False
  minibatch_std: bool = False
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm
  head: ModuleDef = nn.Conv
  dense: ModuleDef = nn.Dense

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, return_features: bool = False):
    mults = channel_mults(self.resolution, self.mults)
    b = x.shape[0]
    labels = labels_for(self, labels, b) if self.num_classes else None
    sn = lambda layer: maybe_sn(layer, self.spectral_norm, train)
    conv = functools.partial(self.conv, kernel_size=(4, 4), strides=(2, 2), padding=1,
                             use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)
    norm = batch_norm(self.norm, train, self.bn_axis_name, self.dtype)
    h = x
    for i, m in enumerate(reversed(mults)):
      h = sn(conv(self.ch * m, name=f'Conv_{i}'))(h)
      if i > 0 and not self.spectral_norm:
        h = norm(name=f'BatchNorm_{i - 1}')(h)
      h = nn.leaky_relu(h, 0.2)
    psi_in = minibatch_stddev(h) if self.minibatch_std else h
    head = self.head(1, (4, 4), padding='VALID', use_bias=False, kernel_init=dcgan_init,
                     dtype=self.dtype, name=f'Conv_{len(mults)}')
    logits = sn(head)(psi_in).reshape(b).astype(jnp.float32)
    if self.num_classes:
      phi = jnp.sum(h.astype(jnp.float32), axis=(1, 2))  # [B, ch * m_0]
      # embed(y) as a Dense on one-hot(y): the kernel is the table, and spectral normalisation
      # wraps it like any other layer.
      embed = sn(self.dense(phi.shape[-1], use_bias=False, kernel_init=dcgan_init,
                            name='embed'))
      e = embed(jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32))
      logits = logits + jnp.sum(e.astype(jnp.float32) * phi, axis=-1)
    if return_features:
      return logits, h.reshape(b, -1).astype(jnp.float32)
    return logits
