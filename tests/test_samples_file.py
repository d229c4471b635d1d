"""Sample files: every accepted layout maps to float32 [N,H,W,C] in [-1, 1]."""

import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.evaluation.samples import load_samples


@pytest.mark.parametrize('array,want_shape', [
    (np.array([[[0, 255]]], np.uint8), (1, 1, 2, 1)),                       # uint8 [N,H,W]
    (np.array([[[[0], [255]]]], np.uint8), (1, 1, 2, 1)),                   # uint8 [N,H,W,1]
    (np.array([[[0.0, 1.0]]], np.float32), (1, 1, 2, 1)),                   # floats in [0, 1]
    (np.array([[[-1.0, 1.0]]], np.float64), (1, 1, 2, 1)),                  # floats in [-1, 1]
    (np.zeros((2, 4, 4, 3), np.uint8), (2, 4, 4, 3)),                       # RGB
])
def test_accepted_layouts(tmp_path, array, want_shape):
  path = str(tmp_path / 's.npz')
  np.savez(path, samples=array)
  x = load_samples(path)
  assert x.shape == want_shape and x.dtype == np.float32
  if want_shape[-1] == 1:
    np.testing.assert_allclose(x.ravel(), [-1.0, 1.0])


def test_uint8_and_unit_floats_agree(tmp_path):
  u8 = np.random.RandomState(0).randint(0, 256, (3, 5, 5)).astype(np.uint8)
  np.savez(tmp_path / 'a.npz', samples=u8)
  np.savez(tmp_path / 'b.npz', samples=u8 / 255.0)
  np.testing.assert_allclose(load_samples(str(tmp_path / 'a.npz')),
                             load_samples(str(tmp_path / 'b.npz')), atol=1e-6)


@pytest.mark.parametrize('array,match', [
    (np.zeros((0, 28, 28), np.uint8), 'shape \\[0, 28, 28\\]'),
    (np.zeros((2, 28, 28, 2), np.uint8), 'shape \\[2, 28, 28, 2\\]'),
    (np.zeros((2, 28, 28), bool), 'bool array'),
    (np.full((2, 28, 28), -2.0), 'floats in \\[-2, -2\\]'),
    (np.array([[[np.inf]]]), '1 NaN/Inf'),
])
def test_rejected(tmp_path, array, match):
  path = str(tmp_path / 's.npz')
  np.savez(path, samples=array)
  with pytest.raises(UserError, match=match):
    load_samples(path)
