"""DCGAN for 28x28 images (Radford et al., 2016, adapted to MNIST): the template model.

The same nets as ``shared/bench/peer_dcgan_torch.py --arch dcgan`` (layer shapes, kernel sizes,
init), so that speed and quality compare side by side. NHWC throughout.

  G: z[100] -> Dense 7*7*4ngf -> BN, ReLU -> ConvT 4/2 (2ngf) -> BN, ReLU -> ConvT 4/2 (C) -> tanh
  D: x -> Conv 4/2 (ndf) -> LReLU .2 -> Conv 4/2 (2ndf) -> BN -> LReLU .2 -> Conv 7x7 -> logit

Plain Flax: the layers are ``ModuleDef`` fields with flax's defaults (as in flax's
examples/imagenet); ``gan_jax.models.build_models`` passes those of ``config.model.kernels``
(``gan_jax.kernels``), which have the same parameters. Layer names are explicit, so swapping a
``ModuleDef`` keeps the parameter tree, and are those of the first release, so a seed draws the
same initial weights as before (flax derives each layer's init key from its name).
"""

import functools
from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.layers import (bn_scale_init, dcgan_init, drawn_as_cin_cout, maybe_sn,
                                   minibatch_stddev)

ModuleDef = Any


def torch_padding(kernel_size: int, padding: int):
  """The padding of flax's ``ConvTranspose(..., transpose_kernel=True)`` that makes it PyTorch's
  ``ConvTranspose2d(..., kernel_size, stride, padding)``: ``k - 1 - p`` on each side of each
  spatial axis (the transposed conv is the gradient of a conv, in both).

  With ``transpose_kernel=True`` flax's kernel ``[kh, kw, Cout, Cin]`` is PyTorch's weight with
  the axes in flax's order, ``kernel[kh, kw, cout, cin] = torch_weight[cin, cout, kh, kw]``, no
  flip; the function is ``y[o] = sum_{i, k : o = s i - p + k} x[i] W[k]`` per spatial axis
  (tests/test_kernels_xla_cpu.py checks it against that formula).
  """
  return ((kernel_size - 1 - padding,) * 2,) * 2


def batch_norm(norm: ModuleDef, train: bool, axis_name: Optional[str] = None, dtype=None):
  """The DCGAN's BatchNorm: PyTorch's defaults (momentum 0.1 there is 0.9 here, eps 1e-5),
  scale ~ N(1, 0.02). ``axis_name`` for cross-replica statistics under pmap."""
  return functools.partial(norm, use_running_average=not train, momentum=0.9, epsilon=1e-5,
                           scale_init=bn_scale_init, axis_name=axis_name, dtype=dtype)


class Generator(nn.Module):
  """``z [B, latent] -> images [B, 28, 28, channels]`` in [-1, 1]."""
  channels: int = 1
  ngf: int = 64
  bn_axis_name: Optional[str] = None  # set for cross-replica BN statistics under pmap
  dtype: Any = None
  dense: ModuleDef = nn.Dense
  conv_transpose: ModuleDef = nn.ConvTranspose
  norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, z, train: bool = True):
    norm = batch_norm(self.norm, train, self.bn_axis_name, self.dtype)
    conv_t = functools.partial(self.conv_transpose, transpose_kernel=True, use_bias=False,
                               kernel_init=drawn_as_cin_cout(dcgan_init), dtype=self.dtype)
    b = z.shape[0]
    # The peer's first layer, a 7x7 transposed conv on a 1x1 input, is this dense layer.
    x = self.dense(7 * 7 * 4 * self.ngf, use_bias=False, kernel_init=dcgan_init,
                   dtype=self.dtype, name='Dense_0')(z.reshape(b, -1))
    x = x.reshape(b, 7, 7, 4 * self.ngf)
    x = nn.relu(norm(name='BatchNorm_0')(x))
    x = conv_t(2 * self.ngf, (4, 4), (2, 2), padding=torch_padding(4, 1),
               name='UpConv4x4s2_0')(x)
    x = nn.relu(norm(name='BatchNorm_1')(x))
    x = conv_t(self.channels, (4, 4), (2, 2), padding=torch_padding(4, 1),
               name='UpConv4x4s2_1')(x)
    return jnp.tanh(x.astype(jnp.float32))


def trunk(x, ndf: int, train: bool, spectral_norm: bool, conv: ModuleDef = nn.Conv,
          norm: ModuleDef = nn.BatchNorm, bn_axis_name=None, dtype=None):
  """D's body, ``[B, 28, 28, C] -> [B, 7, 7, 2 ndf]`` features: conv 4/2, LReLU, conv 4/2, BN
  (not with spectral norm, which replaces it: Miyato et al., 2018), LReLU. Called inside a
  compact ``__call__``, so its layers are the caller's (Conv_0, Conv_1, BatchNorm_0);
  ``Discriminator`` and the projection D share it."""
  conv = functools.partial(conv, use_bias=False, kernel_init=dcgan_init, dtype=dtype)
  sn = lambda layer: maybe_sn(layer, spectral_norm, train)
  x = nn.leaky_relu(sn(conv(ndf, (4, 4), (2, 2), padding=1, name='Conv_0'))(x), 0.2)
  x = sn(conv(2 * ndf, (4, 4), (2, 2), padding=1, name='Conv_1'))(x)
  if not spectral_norm:
    x = batch_norm(norm, train, bn_axis_name, dtype)(name='BatchNorm_0')(x)
  return nn.leaky_relu(x, 0.2)


class DiscriminatorBase(nn.Module):
  """The options of every DCGAN-family D: this module's ``Discriminator`` and the conditional Ds
  of ``gan_jax.models.cond``, which subclass it. ``conv`` and ``norm`` build ``trunk``."""
  ndf: int = 64
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  spectral_norm: bool = False
  minibatch_std: bool = False
  conv: ModuleDef = nn.Conv
  norm: ModuleDef = nn.BatchNorm


class Discriminator(DiscriminatorBase):
  """``images [B, 28, 28, C] -> logits [B]`` (and the 7x7 feature map, flattened, with
  ``return_features``: the layer feature matching matches).

  Options: ``spectral_norm`` wraps every conv in spectral normalisation (and drops BN, as in
  Miyato et al., 2018); ``minibatch_std`` appends the minibatch-stddev channel before the last
  conv. ``head`` is the last conv's constructor, a field of its own so that the builder can keep
  it float32 while ``conv`` takes ``model.matmul_dtype``.
  """
  head: ModuleDef = nn.Conv

  @nn.compact
  def __call__(self, x, train: bool = True, return_features: bool = False):
    features = trunk(x, self.ndf, train, self.spectral_norm, self.conv, self.norm,
                     self.bn_axis_name, self.dtype)
    x = minibatch_stddev(features) if self.minibatch_std else features
    head = self.head(1, (7, 7), padding='VALID', use_bias=False, kernel_init=dcgan_init,
                     dtype=self.dtype, name='Conv_2')
    x = maybe_sn(head, self.spectral_norm, train)(x)
    logits = x.reshape(x.shape[0]).astype(jnp.float32)
    if return_features:
      return logits, features.reshape(features.shape[0], -1).astype(jnp.float32)
    return logits
