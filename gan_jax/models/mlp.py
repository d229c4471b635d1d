"""Fully connected GANs.

``Generator``/``Discriminator`` with ``paper=True`` widths are the MNIST nets of Goodfellow et al.
(2014) (and of ``shared/bench/peer_dcgan_torch.py --arch mlp``):

  G: z[100] -> 1200 ReLU -> 1200 ReLU -> 784 tanh
  D: dropout .2 -> maxout 240x5 -> dropout .5 -> maxout 240x5 -> dropout .5 -> logit

The same modules with small widths and 2-D outputs serve the toy mixtures. Plain Flax: the dense
layers are the ``dense`` field (``nn.Dense``; ``gan_jax.models.build_models`` passes
``config.model.kernels``'s, with ``model.matmul_dtype``).

``ConcatGenerator`` + ``ProjectionDiscriminator`` ('mlp_concat_proj') are the same nets told a
label ``y`` (a class, or a k-means cluster for self-conditioning, ``config.data.clusters``), as
the DCGAN pair of ``cond.py``: G gets ``one_hot(y)`` concatenated to ``z``; D adds the
projection ``<embed(y), h>`` of its last hidden layer ``h`` to its logit (Miyato & Koyama,
2018). Signatures: ``G(z, labels=None, train=True)``, ``D(x, labels=None, train=True,
return_features=False)``; labels may be left out only while initialising.
"""

import functools
import math
from typing import Any, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models.layers import Maxout, labels_for, maybe_sn, minibatch_stddev

ModuleDef = Any


class Generator(nn.Module):
  """``z [B, latent] -> x [B, *out_shape]``; tanh output in [-1, 1] when ``tanh``, else linear."""
  out_shape: Tuple[int, ...] = (28, 28, 1)
  hidden: Sequence[int] = (1200, 1200)
  tanh: bool = True
  dtype: Any = None
  dense: ModuleDef = nn.Dense

  @nn.compact
  def __call__(self, z, train: bool = True):
    del train  # no BN or dropout
    dense = functools.partial(self.dense, dtype=self.dtype)
    x = z.reshape(z.shape[0], -1)
    for i, h in enumerate(self.hidden):
      x = nn.relu(dense(h, name=f'Dense_{i}')(x))
    x = dense(math.prod(self.out_shape), name=f'Dense_{len(self.hidden)}')(x)
    x = x.astype(jnp.float32)
    if self.tanh:
      x = jnp.tanh(x)
    return x.reshape((z.shape[0],) + tuple(self.out_shape))


class Discriminator(nn.Module):
  """``x [B, ...] -> logits [B]`` (and the last hidden layer with ``return_features``).

  Maxout layers when ``pieces > 1``, else LeakyReLU(0.2) layers. Dropout needs an rng stream
  named ``'dropout'`` when ``train``. ``spectral_norm`` wraps the dense layers of a LeakyReLU
  net (and the output layer); ``minibatch_std`` appends the minibatch-stddev feature before the
  output layer.
  """
  hidden: Sequence[int] = (240, 240)
  pieces: int = 5
  input_dropout: float = 0.2
  dropout: float = 0.5
  spectral_norm: bool = False
  minibatch_std: bool = False
  dtype: Any = None
  dense: ModuleDef = nn.Dense

  @nn.compact
  def __call__(self, x, train: bool = True, return_features: bool = False):
    logits, features = self.logits_and_features(x, train)
    return (logits, features) if return_features else logits

  @nn.nowrap
  def logits_and_features(self, x, train: bool):
    """(logits [B], last hidden layer [B, hidden[-1]] float32), inside ``__call__``'s scope."""
    dense = functools.partial(self.dense, dtype=self.dtype)
    x = x.reshape(x.shape[0], -1).astype(self.dtype or jnp.float32)
    x = nn.Dropout(self.input_dropout, deterministic=not train)(x)
    for i, h in enumerate(self.hidden):
      if self.pieces > 1:
        x = Maxout(h, self.pieces, dtype=self.dtype, dense=self.dense, name=f'Maxout_{i}')(x)
      else:
        layer = maybe_sn(dense(h, name=f'Dense_{i}'), self.spectral_norm, train)
        x = nn.leaky_relu(layer(x), 0.2)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    features = x.astype(jnp.float32)
    if self.minibatch_std:
      x = minibatch_stddev(x)
    out = dense(1, name=f'Dense_{0 if self.pieces > 1 else len(self.hidden)}')
    logits = maybe_sn(out, self.spectral_norm, train)(x)
    return logits.reshape(x.shape[0]).astype(jnp.float32), features


class ConcatGenerator(Generator):
  """``(z [B, latent], labels [B]) -> x``: ``Generator`` on ``[z, one_hot(y)]``."""
  num_classes: int = 0  # >= 1

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    labels = labels_for(self, labels, z.shape[0])
    y = jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)
    net = Generator(out_shape=self.out_shape, hidden=self.hidden, tanh=self.tanh,
                    dtype=self.dtype, dense=self.dense, name='net')
    return net(jnp.concatenate([z.reshape(z.shape[0], -1), y], axis=-1), train=train)


class ProjectionDiscriminator(Discriminator):
  """``(x, labels [B]) -> logits [B]``: ``Discriminator``'s logit plus ``<embed(y), h>``.

  ``h`` is the last hidden layer (after its dropout; the features ``return_features`` gives),
  ``embed(y) = E[y]`` a ``[num_classes, hidden[-1]]`` table, float32 like the logit. With
  ``E = 0`` the net is ``Discriminator``. ``spectral_norm`` normalises ``E`` too.
  """
  num_classes: int = 0  # >= 1

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, return_features: bool = False):
    labels = labels_for(self, labels, x.shape[0])
    logits, h = self.logits_and_features(x, train)
    embed = maybe_sn(nn.Dense(h.shape[-1], use_bias=False, name='embed'), self.spectral_norm,
                     train)
    e = embed(jax.nn.one_hot(labels, self.num_classes, dtype=jnp.float32))
    logits = logits + jnp.sum(e * h, axis=-1)
    return (logits, h) if return_features else logits
