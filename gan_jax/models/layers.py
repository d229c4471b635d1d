"""Layers and initialisers the GAN models share: plain Flax, taking their inner layers as
``ModuleDef`` fields where they have any (``gan_jax.kernels.module_defs`` supplies them)."""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

Initializer = Callable[..., jax.Array]
ModuleDef = Any

# DCGAN init (Radford et al., 2016): weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02).
dcgan_init = nn.initializers.normal(0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def drawn_as_cin_cout(init: Initializer) -> Initializer:
  """``init`` for a ``transpose_kernel=True`` kernel ``[kh, kw, Cout, Cin]``, drawn with the
  shape ``[kh, kw, Cin, Cout]`` and its channel axes swapped.

  The DCGANs' transposed convs were a layer of ours with a ``[kh, kw, Cin, Cout]`` kernel of the
  same function (until commit 7864abb); drawn this way, a seed still gives the same initial
  nets, and runs repeat the ones measured before (experiments/*.py docstrings). For an
  i.i.d. ``init`` it is the same distribution either way."""
  def draw(key, shape, dtype=jnp.float32):
    kh, kw, cout, cin = shape
    return jnp.swapaxes(init(key, (kh, kw, cin, cout), dtype), 2, 3)
  return draw


class Maxout(nn.Module):
  """Maxout unit (Goodfellow et al., 2013): ``max_k (x W_k + b_k)``, ``[B, D] -> [B, features]``."""
  features: int
  pieces: int
  dtype: Any = None
  dense: ModuleDef = nn.Dense

  @nn.compact
  def __call__(self, x):
    y = self.dense(self.features * self.pieces, dtype=self.dtype, name='Dense_0')(x)
    return y.reshape(x.shape[0], self.features, self.pieces).max(axis=-1)


def minibatch_stddev(x, eps: float = 1e-8):
  """Minibatch standard deviation (Karras et al., 2018), a mode-collapse aid for D.

  Appends one feature: the batch standard deviation of every feature, averaged. A generator that
  collapses to few outputs makes this feature small on fake batches, which D can see. ``x`` is
  ``[B, ..., C]``; the result is ``[B, ..., C + 1]``. Under jit on a sharded batch the statistic
  is over the global batch.
  """
  std = jnp.sqrt(jnp.var(x.astype(jnp.float32), axis=0) + eps)
  stat = jnp.broadcast_to(jnp.mean(std).astype(x.dtype), x.shape[:-1] + (1,))
  return jnp.concatenate([x, stat], axis=-1)


def maybe_sn(layer: nn.Module, use: bool, train: bool):
  """``layer`` wrapped in spectral normalisation (Miyato et al., 2018) when ``use``.

  Flax keeps the power-iteration vector ``u`` and ``sigma`` in the ``'batch_stats'`` collection,
  so they live in the TrainState next to BN statistics and are checkpointed with it. One power
  iteration per training call (``update_stats=train``).
  """
  if not use:
    return layer
  sn = nn.SpectralNorm(layer)
  return lambda x: sn(x, update_stats=train)


def labels_for(module: nn.Module, labels, batch: int):
  """``labels`` as int32 ``[batch]`` for a class-conditional net (one with ``num_classes``).

  While initialising, missing labels are zeros (they build the same params); when applying,
  they are a ValueError: a forgotten label must not silently mean class 0.
  """
  if module.num_classes < 1:
    raise ValueError(f'{type(module).__name__} is class-conditional: set num_classes >= 1 '
                     f'(got {module.num_classes})')
  if labels is None:
    if module.is_initializing():
      return jnp.zeros((batch,), jnp.int32)
    raise ValueError(f'{type(module).__name__} is class-conditional (num_classes='
                     f'{module.num_classes}): pass labels=int [B] in [0, {module.num_classes})')
  labels = jnp.asarray(labels)
  if labels.shape != (batch,):
    raise ValueError(f'labels have shape {labels.shape}; expected ({batch},), one per sample')
  return labels.astype(jnp.int32)


class ConditionalBatchNorm(nn.Module):
  """Class-conditional BatchNorm (de Vries et al., 2017; Miyato & Koyama, 2018).

  ``y = gamma[label] * (x - mean) / sqrt(var + eps) + beta[label]``. The statistics are those of
  plain BatchNorm (``norm``, without its own scale and shift), shared by all classes: batch
  statistics in training, running averages otherwise, kept in ``'batch_stats'``. The scale and
  shift are per-class rows of two ``[num_classes, C]`` tables. ``gamma_init`` is 1 by default
  (the SNGAN authors' code: at initialisation it is unconditional BatchNorm); the DCGAN-family
  nets pass ``bn_scale_init``, N(1, 0.02), like their plain BatchNorms.

  ``x`` is ``[B, ..., C]``, ``labels`` int ``[B]`` in ``[0, num_classes)``; the result has ``x``'s
  shape. ``train`` (call) or ``use_running_average`` (attribute), exactly one of them, picks the
  statistics.
  """
  num_classes: int
  use_running_average: Optional[bool] = None
  momentum: float = 0.9
  epsilon: float = 1e-5
  axis_name: Optional[str] = None
  dtype: Any = None
  gamma_init: Initializer = nn.initializers.ones
  norm: ModuleDef = nn.BatchNorm

  @nn.compact
  def __call__(self, x, labels, train: Optional[bool] = None):
    running = nn.merge_param('use_running_average', self.use_running_average,
                             None if train is None else not train)
    x_hat = self.norm(use_running_average=running, momentum=self.momentum, epsilon=self.epsilon,
                      use_scale=False, use_bias=False, axis_name=self.axis_name, dtype=self.dtype,
                      name='BatchNorm_0')(x)
    c = x.shape[-1]
    gamma = self.param('gamma', self.gamma_init, (self.num_classes, c), jnp.float32)
    beta = self.param('beta', nn.initializers.zeros, (self.num_classes, c), jnp.float32)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
    dtype = self.dtype or x_hat.dtype
    return (gamma[labels].reshape(shape).astype(dtype) * x_hat
            + beta[labels].reshape(shape).astype(dtype))
