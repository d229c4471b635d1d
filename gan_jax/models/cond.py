"""Class-conditional DCGANs for 28x28 images: ``G(z, labels)`` and ``D(x, labels)``.

Two ways of telling the nets the class ``y`` in ``[0, num_classes)``:

* ``CBNGenerator`` + ``ProjectionDiscriminator``: the modern recipe. G's BatchNorms are
  class-conditional (de Vries et al., 2017; Dumoulin et al., 2017): the statistics are shared
  across classes, the affine map is per class, ``gamma[y] * x_hat + beta[y]``. D is a
  projection discriminator (Miyato & Koyama, 2018, "cGANs with Projection Discriminator"):
  ``D(x, y) = psi(h(x)) + <embed(y), h(x)>`` with ``h`` D's last feature layer (flattened) and
  ``psi`` linear, the form of the log density ratio when p(y|x) is log-linear in ``h``.
* ``ConcatGenerator`` + ``ConcatDiscriminator``: the original cGAN (Mirza & Osindero, 2014).
  The one-hot label is concatenated to ``z`` in G and, as ``num_classes`` constant planes, to
  D's input channels; the nets are otherwise ``dcgan.Generator`` / ``dcgan.Discriminator``.

Any G pairs with any D (``gan_jax.models.MODELS``: 'dcgan_cbn_proj', 'dcgan_concat',
'dcgan_concat_proj'). In this shallow G, cBN can only scale and shift whole channels of two
layers, while the concat G's first (dense) layer gives every class its own 7x7 pattern; at
DCGAN learning rates the cBN G learns to follow its labels much more slowly.

Plain Flax, like ``dcgan.py``: the layers are ``ModuleDef`` fields with flax's defaults, which
``gan_jax.models.build_models`` fills from ``config.model.kernels``.

Signatures (shared with every conditional model): ``G(z, labels=None, train=True)`` and
``D(x, labels=None, train=True, return_features=False)``. ``labels`` are int ``[B]``; they may
be left out only while initialising (``create_state`` builds the params without labels), never
when applying: a forgotten label must not silently mean class 0.
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import dcgan
from gan_jax.models.layers import (ConditionalBatchNorm, bn_scale_init, dcgan_init,
                                   drawn_as_cin_cout, maybe_sn)
from gan_jax.models.layers import labels_for as _labels_for
from gan_jax.models.layers import minibatch_stddev

ModuleDef = Any


class CBNGenerator(dcgan.Generator):
  """``(z [B, latent], labels [B]) -> images [B, 28, 28, channels]`` in [-1, 1].

  ``dcgan.Generator`` with each BatchNorm replaced by a ``ConditionalBatchNorm`` (whose
  statistics are ``norm``'s):

    z -> Dense 7*7*4ngf -> cBN(y), ReLU -> ConvT 4/2 (2ngf) -> cBN(y), ReLU -> ConvT 4/2 (C) -> tanh
  """
  num_classes: int = 0  # >= 1: the fields of dcgan.Generator come first

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    b = z.shape[0]
    labels = _labels_for(self, labels, b)
    cbn = lambda name: ConditionalBatchNorm(self.num_classes, axis_name=self.bn_axis_name,
                                            dtype=self.dtype, gamma_init=bn_scale_init,
                                            norm=self.norm, name=name)
    conv_t = functools.partial(self.conv_transpose, transpose_kernel=True, use_bias=False,
                               kernel_init=drawn_as_cin_cout(dcgan_init), dtype=self.dtype)
    x = self.dense(7 * 7 * 4 * self.ngf, use_bias=False, kernel_init=dcgan_init,
                   dtype=self.dtype, name='Dense_0')(z.reshape(b, -1))
    x = x.reshape(b, 7, 7, 4 * self.ngf)
    x = nn.relu(cbn('ConditionalBatchNorm_0')(x, labels, train))
    x = conv_t(2 * self.ngf, (4, 4), (2, 2), padding=dcgan.torch_padding(4, 1),
               name='UpConv4x4s2_0')(x)
    x = nn.relu(cbn('ConditionalBatchNorm_1')(x, labels, train))
    x = conv_t(self.channels, (4, 4), (2, 2), padding=dcgan.torch_padding(4, 1),
               name='UpConv4x4s2_1')(x)
    return jnp.tanh(x.astype(jnp.float32))


class ProjectionDiscriminator(dcgan.DiscriminatorBase):
  """``(images [B, 28, 28, C], labels [B]) -> logits [B]``: the DCGAN D with a projection head.

    h = LReLU(BN(Conv 4/2 (2ndf) (LReLU(Conv 4/2 (ndf) (x)))))      [B, 7, 7, 2ndf], flattened
    logit = psi(h) + <embed(y), h>,   psi(h) = <w, h>,   embed(y) = E[y]  (E: [num_classes, 98ndf])

  ``psi`` is the unconditional DCGAN head (its 7x7 conv is this dot product), so with ``E = 0``
  the net is ``dcgan.Discriminator``. ``return_features`` also returns ``h`` (feature
  matching). ``spectral_norm`` normalises every conv, ``psi`` and ``E`` (Miyato & Koyama apply
  it to the embedding too) and drops BN; ``minibatch_std`` feeds ``psi`` the extra stddev plane
  (the projection term uses ``h`` alone).
  """
  num_classes: int = 0  # >= 1: the fields of dcgan.DiscriminatorBase come first
  dense: ModuleDef = nn.Dense

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, return_features: bool = False):
    b = x.shape[0]
    labels = _labels_for(self, labels, b)

    features = dcgan.trunk(x, self.ndf, train, self.spectral_norm, self.conv, self.norm,
                           self.bn_axis_name, self.dtype)
    h = features.reshape(b, -1)
    psi_in = minibatch_stddev(features).reshape(b, -1) if self.minibatch_std else h
    dense = functools.partial(self.dense, use_bias=False, kernel_init=dcgan_init,
                              dtype=self.dtype)
    psi = maybe_sn(dense(1, name='psi'), self.spectral_norm, train)
    # embed(y) as a Dense on one-hot(y): the kernel is the [num_classes, dim] table E, and the
    # layer form lets spectral normalisation wrap it like any other.
    embed = maybe_sn(dense(h.shape[-1], name='embed'), self.spectral_norm, train)
    e = embed(jax.nn.one_hot(labels, self.num_classes, dtype=h.dtype))
    logits = (psi(psi_in)[:, 0] + jnp.sum(e * h, axis=-1)).astype(jnp.float32)
    if return_features:
      return logits, h.astype(jnp.float32)
    return logits


class ConcatGenerator(dcgan.Generator):
  """cGAN G (Mirza & Osindero, 2014): ``dcgan.Generator`` on ``[z, one_hot(y)]``."""
  num_classes: int = 0  # >= 1: the fields of dcgan.Generator come first

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    labels = _labels_for(self, labels, z.shape[0])
    y = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
    net = dcgan.Generator(channels=self.channels, ngf=self.ngf, bn_axis_name=self.bn_axis_name,
                          dtype=self.dtype, dense=self.dense, conv_transpose=self.conv_transpose,
                          norm=self.norm, name='net')
    return net(jnp.concatenate([z.reshape(z.shape[0], -1), y], axis=-1), train=train)


class ConcatDiscriminator(dcgan.Discriminator):
  """cGAN D (Mirza & Osindero, 2014): ``dcgan.Discriminator`` on ``x`` with ``num_classes``
  extra input channels, channel ``k`` constant ``1[y = k]`` (the one-hot label as planes)."""
  num_classes: int = 0  # >= 1: the fields of dcgan.Discriminator come first

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, return_features: bool = False):
    labels = _labels_for(self, labels, x.shape[0])
    y = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)
    planes = jnp.broadcast_to(y[:, None, None, :], x.shape[:-1] + (self.num_classes,))
    net = dcgan.Discriminator(ndf=self.ndf, bn_axis_name=self.bn_axis_name, dtype=self.dtype,
                              spectral_norm=self.spectral_norm, minibatch_std=self.minibatch_std,
                              conv=self.conv, norm=self.norm, head=self.head, name='net')
    return net(jnp.concatenate([x, planes], axis=-1), train=train,
               return_features=return_features)
