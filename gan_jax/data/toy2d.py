"""2-D Gaussian mixtures ('ring', 'grid'), the standard mode-collapse toy problems.

The mixture parameters live in one mapping, `MIXTURES`, and are also exposed through
`info['centers']` / `info['std']` so that mode-coverage metrics use exactly the same values
as the sampler.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.data.core import Source
from gan_jax.errors import DataError


class Mixture(NamedTuple):
  """An isotropic Gaussian mixture with equal weights.

  Attributes:
    centers: float32 [K, 2] mode means.
    std: per-coordinate standard deviation of every mode.
  """
  centers: np.ndarray
  std: float


def _ring(num_modes: int, radius: float) -> np.ndarray:
  angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
  return np.stack([radius * np.cos(angles), radius * np.sin(angles)], -1).astype(np.float32)


def _grid(coords) -> np.ndarray:
  return np.array([(x, y) for x in coords for y in coords], np.float32)


MIXTURES = {
    # 8 modes evenly spaced on a circle of radius 2.
    'ring': Mixture(centers=_ring(8, 2.0), std=0.02),
    # 25 modes on the lattice {-4, -2, 0, 2, 4}^2.
    'grid': Mixture(centers=_grid((-4.0, -2.0, 0.0, 2.0, 4.0)), std=0.05),
}


def _draw(arrays: dict, key: jax.Array, batch_size: int, *, std: float) -> dict:
  """Samples `batch_size` points: a uniformly chosen mode plus N(0, std^2 I) noise.

  Returns:
    `{'image': float32 [B, 2], 'label': int32 [B] mode index}`.
  """
  centers = jnp.asarray(arrays['centers'])
  mode_key, noise_key = jax.random.split(key)
  label = jax.random.randint(mode_key, (batch_size,), 0, centers.shape[0])
  noise = std * jax.random.normal(noise_key, (batch_size, 2), jnp.float32)
  return {'image': centers[label] + noise, 'label': label.astype(jnp.int32)}


def load_toy2d(name: str) -> Source:
  """Builds the `Source` of a 2-D mixture.

  Args:
    name: a key of `MIXTURES` ('ring' or 'grid').

  Returns:
    A `Source` with `arrays={'centers': float32 [K, 2]}` and an infinite `num_examples`
    (None); `info['num_classes']` is K because the label is the mode index.

  Raises:
    DataError: for an unknown mixture name.
  """
  if name not in MIXTURES:
    raise DataError(f'toy2d dataset {name!r} does not exist; use one of {sorted(MIXTURES)}')
  mixture = MIXTURES[name]
  centers = mixture.centers.copy()
  info = {
      'name': name,
      'shape': (2,),
      'num_classes': int(centers.shape[0]),
      'num_examples': None,
      'source': 'toy2d',
      'centers': centers.copy(),
      'std': float(mixture.std),
  }
  # std is a Python constant closed over by draw (not an array), which keeps `arrays` to
  # exactly {'centers'} and lets XLA fold it.
  draw = functools.partial(_draw, std=float(mixture.std))
  return Source(arrays={'centers': centers}, draw=draw, info=info)
