"""Fully connected GANs.

``Generator``/``Discriminator`` with ``paper=True`` widths are the MNIST nets of Goodfellow et al.
(2014) (and of ``shared/bench/peer_dcgan_torch.py --arch mlp``):

  G: z[100] -> 1200 ReLU -> 1200 ReLU -> 784 tanh
  D: dropout .2 -> maxout 240x5 -> dropout .5 -> maxout 240x5 -> dropout .5 -> logit

The same modules with small widths and 2-D outputs serve the toy mixtures.
"""

import math
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.layers import Maxout, dense_dot_general, maybe_sn, minibatch_stddev


class Generator(nn.Module):
  """``z [B, latent] -> x [B, *out_shape]``; tanh output in [-1, 1] when ``tanh``, else linear."""
  out_shape: Tuple[int, ...] = (28, 28, 1)
  hidden: Sequence[int] = (1200, 1200)
  tanh: bool = True
  dtype: Any = None
  matmul_dtype: str = 'float32'  # 'bfloat16': the dense layers' matmuls in bf16, f32 accumulation

  @nn.compact
  def __call__(self, z, train: bool = True):
    del train  # no BN or dropout
    dot = dense_dot_general(self.matmul_dtype)
    x = z.reshape(z.shape[0], -1)
    for h in self.hidden:
      x = nn.relu(nn.Dense(h, dtype=self.dtype, dot_general=dot)(x))
    x = nn.Dense(math.prod(self.out_shape), dtype=self.dtype, dot_general=dot)(x)
    x = x.astype(jnp.float32)
    if self.tanh:
      x = jnp.tanh(x)
    return x.reshape((z.shape[0],) + tuple(self.out_shape))


class Discriminator(nn.Module):
  """``x [B, ...] -> logits [B]`` (and the last hidden layer with ``return_features``).

  Maxout layers when ``pieces > 1``, else LeakyReLU(0.2) layers. Dropout needs an rng stream
  named ``'dropout'`` when ``train``. ``spectral_norm`` wraps the dense layers of a LeakyReLU
  net; ``minibatch_std`` appends the minibatch-stddev feature before the output layer.
  """
  hidden: Sequence[int] = (240, 240)
  pieces: int = 5
  input_dropout: float = 0.2
  dropout: float = 0.5
  spectral_norm: bool = False
  minibatch_std: bool = False
  dtype: Any = None
  matmul_dtype: str = 'float32'

  @nn.compact
  def __call__(self, x, train: bool = True, return_features: bool = False):
    dot = dense_dot_general(self.matmul_dtype)
    x = x.reshape(x.shape[0], -1).astype(self.dtype or jnp.float32)
    x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
    for h in self.hidden:
      if self.pieces > 1:
        x = Maxout(h, self.pieces, dtype=self.dtype, matmul_dtype=self.matmul_dtype)(x)
      else:
        dense = nn.Dense(h, dtype=self.dtype, dot_general=dot)
        x = nn.leaky_relu(maybe_sn(dense, self.spectral_norm, train)(x), 0.2)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    features = x.astype(jnp.float32)
    if self.minibatch_std:
      x = minibatch_stddev(x)
    logits = maybe_sn(nn.Dense(1, dtype=self.dtype, dot_general=dot), self.spectral_norm,
                      train)(x)
    logits = logits.reshape(x.shape[0]).astype(jnp.float32)
    return (logits, features) if return_features else logits
