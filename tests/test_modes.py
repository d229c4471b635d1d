"""2-D mode metrics on constructed sample sets with known answers."""

import numpy as np
import pytest

from gan_jax.data.toy2d import MIXTURES
from gan_jax.evaluation.modes import mode_metrics


def _from_modes(centers, std, per_mode, rng):
  return np.concatenate([c + std * rng.randn(n, 2) for c, n in zip(centers, per_mode) if n])


def test_perfect_samples_cover_all_modes_uniformly():
  m = MIXTURES['grid']
  rng = np.random.RandomState(0)
  s = _from_modes(m.centers, m.std, [400] * 25, rng)
  out = mode_metrics(s, m.centers, m.std)
  assert out['modes_covered'] == 25 and out['num_samples'] == 10000
  assert out['high_quality'] > 0.98  # 3-sigma in 2-D holds ~98.9 %
  assert out['kl_uniform'] < 0.01


def test_collapse_to_one_mode():
  m = MIXTURES['ring']
  s = _from_modes(m.centers, m.std, [1000] + [0] * 7, np.random.RandomState(1))
  out = mode_metrics(s, m.centers, m.std)
  assert out['modes_covered'] == 1
  np.testing.assert_allclose(out['kl_uniform'], np.log(8), rtol=1e-5)


def test_dropped_modes_and_off_manifold_points():
  m = MIXTURES['grid']
  rng = np.random.RandomState(2)
  s = _from_modes(m.centers, m.std, [100] * 20 + [0] * 5, rng)
  junk = rng.uniform(-5, 5, size=(2000, 2))
  junk = junk[np.min(np.linalg.norm(junk[:, None] - m.centers[None], axis=-1), 1) > 0.5][:1000]
  out = mode_metrics(np.concatenate([s, junk]), m.centers, m.std)
  assert out['modes_covered'] == 20
  np.testing.assert_allclose(out['high_quality'], 2000 * 0.989 / 3000, atol=0.01)
  # uniform over 20 of 25 modes: KL = log(25/20)
  np.testing.assert_allclose(out['kl_uniform'], np.log(25 / 20), atol=0.01)


def test_a_mode_below_one_percent_is_not_covered():
  m = MIXTURES['ring']
  s = _from_modes(m.centers, 0.0, [199] * 7 + [1], np.random.RandomState(3))  # 1 of 1394 < 1 %
  assert mode_metrics(s, m.centers, m.std)['modes_covered'] == 7
