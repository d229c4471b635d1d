"""DCGAN for 28x28 images (Radford et al., 2016, adapted to MNIST).

The same nets as ``shared/bench/peer_dcgan_torch.py --arch dcgan`` (layer shapes, kernel sizes,
init), so that speed and quality compare side by side. NHWC throughout.

  G: z[100] -> ConvT 7x7 (256) -> BN, ReLU -> ConvT 4/2 (128) -> BN, ReLU -> ConvT 4/2 (C) -> tanh
  D: x -> Conv 4/2 (64) -> LReLU .2 -> Conv 4/2 (128) -> BN -> LReLU .2 -> Conv 7x7 -> logit
"""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.layers import (Conv4x4s2, FullConv, UpConv4x4s2, bn_act, bn_scale_init,
                                   dcgan_init, maybe_sn, minibatch_stddev)


class Generator(nn.Module):
  """``z [B, latent] -> images [B, 28, 28, channels]`` in [-1, 1]."""
  channels: int = 1
  ngf: int = 64
  bn_axis_name: Optional[str] = None  # set for cross-replica BN statistics under pmap
  dtype: Any = None
  matmul_dtype: str = 'float32'  # 'bfloat16': the up-convs' matmuls in bf16, f32 accumulation
  upconv: str = 'custom'  # layers.UPCONV_IMPLS: 'custom' (fast on XLA:CPU) or 'lax'

  @nn.compact
  def __call__(self, z, train: bool = True):
    bn_relu = lambda v: bn_act(v, train, 0.0, 0.9, 1e-5, bn_scale_init, self.bn_axis_name,
                               self.dtype)
    # A 7x7 transposed conv on a 1x1 input is exactly a dense layer to 7*7*C.
    x = nn.Dense(7 * 7 * 4 * self.ngf, use_bias=False, kernel_init=dcgan_init, dtype=self.dtype)(
        z.reshape(z.shape[0], -1))
    x = x.reshape(z.shape[0], 7, 7, 4 * self.ngf)
    x = bn_relu(x)
    x = UpConv4x4s2(2 * self.ngf, dtype=self.dtype, matmul_dtype=self.matmul_dtype,
                    impl=self.upconv)(x)
    x = bn_relu(x)
    x = UpConv4x4s2(self.channels, dtype=self.dtype, matmul_dtype=self.matmul_dtype,
                    impl=self.upconv)(x)
    return jnp.tanh(x.astype(jnp.float32))


def d_conv(features: int, k: int, stride: int, pad: int, spectral_norm: bool, train: bool,
           dtype=None, name=None, matmul_dtype: str = 'float32') -> nn.Module:
  """A bias-free DCGAN conv of D, spectrally normalised when ``spectral_norm``. A 4x4 stride-2
  conv with ``matmul_dtype`` 'bfloat16' (and no spectral norm) is ``Conv4x4s2``: the same
  function and ``kernel`` param, as im2col matmuls on bf16 operands."""
  if (k, stride, pad) == (4, 2, 1) and matmul_dtype != 'float32' and not spectral_norm:
    return Conv4x4s2(features, dtype=dtype, matmul_dtype=matmul_dtype, name=name)
  layer = nn.Conv(features, (k, k), (stride, stride), padding=((pad, pad), (pad, pad)),
                  use_bias=False, kernel_init=dcgan_init, dtype=dtype, name=name)
  return maybe_sn(layer, spectral_norm, train)


def trunk(x, ndf: int, train: bool, spectral_norm: bool, bn_axis_name=None, dtype=None,
          matmul_dtype: str = 'float32'):
  """D's body, ``[B, 28, 28, C] -> [B, 7, 7, 2 ndf]`` features: conv 4/2, LReLU, conv 4/2, BN
  (not with spectral norm), LReLU. Called inside a compact ``__call__``, so its layers are the
  caller's (Conv_0, Conv_1, BatchNorm_0); ``Discriminator`` and the projection D share it."""
  x = nn.leaky_relu(d_conv(ndf, 4, 2, 1, spectral_norm, train, dtype, 'Conv_0',
                           matmul_dtype)(x), 0.2)
  x = d_conv(2 * ndf, 4, 2, 1, spectral_norm, train, dtype, 'Conv_1', matmul_dtype)(x)
  if spectral_norm:
    return nn.leaky_relu(x, 0.2)
  return bn_act(x, train, 0.2, 0.9, 1e-5, bn_scale_init, bn_axis_name, dtype)


class Discriminator(nn.Module):
  """``images [B, 28, 28, C] -> logits [B]`` (and the 7x7 feature map, flattened, with
  ``return_features``: the layer feature matching matches).

  Options: ``spectral_norm`` wraps every conv in spectral normalisation (and drops BN, as in
  Miyato et al., 2018); ``minibatch_std`` appends the minibatch-stddev channel before the last conv.
  """
  ndf: int = 64
  bn_axis_name: Optional[str] = None
  dtype: Any = None
  spectral_norm: bool = False
  minibatch_std: bool = False
  matmul_dtype: str = 'float32'  # 'bfloat16': the 4x4 stride-2 convs as bf16 im2col matmuls

  @nn.compact
  def __call__(self, x, train: bool = True, return_features: bool = False):
    features = trunk(x, self.ndf, train, self.spectral_norm, self.bn_axis_name, self.dtype,
                     self.matmul_dtype)
    x = minibatch_stddev(features) if self.minibatch_std else features
    if self.spectral_norm:
      x = d_conv(1, 7, 1, 0, self.spectral_norm, train, self.dtype, 'Conv_2')(x)
    else:  # the same 7x7 VALID conv on the 7x7 map, as a matmul
      x = FullConv(1, dtype=self.dtype, name='Conv_2')(x)
    logits = x.reshape(x.shape[0]).astype(jnp.float32)
    if return_features:
      return logits, features.reshape(features.shape[0], -1).astype(jnp.float32)
    return logits
