"""The clean resize (``clean_resize``) against clean-fid, and ``InceptionEvaluator``.

- ``clean_resize`` equals clean-fid's own resizer, ``make_resizer("PIL", False, "bicubic",
  (299, 299))`` applied per image (the real package), on RGB and gray images up- and downsampled.
- Quantization: 0.999 and 1 land on 255, -1 on 0; the clean pipeline of floats is that of their
  quantized uint8.
- The evaluator with random weights at 75 x 75 (not FID; fast): FD 0 for fake == real, > 0 for
  shifted fakes; every metric of ``__call__``.
- ``for_rgb_data`` without a weights file: None, and the line said once over two calls.
"""

import chex
import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.evaluation import clean_resize, inception, inception_eval, metrics


def _uint8_images(n, h, w, c=3, seed=0):
  return np.random.RandomState(seed).randint(0, 256, size=(n, h, w, c)).astype(np.uint8)


def _clean_fid_resize(images_uint8):
  """clean-fid's clean-mode resizer (``cleanfid.resize.build_resizer('clean')``), per image."""
  cleanfid_resize = pytest.importorskip('cleanfid.resize')
  resizer = cleanfid_resize.make_resizer('PIL', False, 'bicubic', (299, 299))
  return np.stack([resizer(im) for im in images_uint8])


# ----------------------------------------------------------------------------------------------
# The clean resize.


@pytest.mark.parametrize('shape', [(2, 32, 32, 3), (2, 64, 64, 3), (1, 48, 32, 3),
                                   (1, 320, 310, 3)])  # up, non-square, down
def test_clean_resize_matches_clean_fid(shape):
  x = _uint8_images(*shape, seed=shape[1])
  ref = _clean_fid_resize(x)
  ours = clean_resize.clean_resize(x)
  chex.assert_shape(ours, (shape[0], 299, 299, 3))
  assert ours.dtype == np.float32 and ours.min() >= 0 and ours.max() <= 255
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-4)
  # The test discriminates: pytorch-fid's bilinear resize is far from it.
  bilinear = (np.asarray(inception.preprocess(x, resize='bilinear')) + 1) * 127.5
  assert np.abs(bilinear - ref).max() > 5


def test_clean_resize_gray_is_the_channel_thrice():
  x = _uint8_images(2, 32, 32, c=1, seed=3)
  ours = clean_resize.clean_resize(x)
  np.testing.assert_allclose(ours, _clean_fid_resize(np.repeat(x, 3, axis=-1)), rtol=0, atol=1e-4)
  np.testing.assert_array_equal(clean_resize.clean_resize(x[..., 0]), ours)  # [N, H, W] too
  with pytest.raises(UserError, match='quantize float images'):
    clean_resize.clean_resize(x.astype(np.float32))


def test_bicubic_matrix():
  np.testing.assert_allclose(clean_resize.bicubic_matrix(7, 7), np.eye(7), atol=1e-12)
  for n, m in ((32, 299), (400, 299)):
    r = clean_resize.bicubic_matrix(n, m)
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-12)
  # Upsampling 2 -> 4, row 0: centre 0.25, taps 0 and 1 at distances 0.25 and 1.25, where the
  # cubic is 1 - 2.5 (1/4)^2 + 1.5 (1/4)^3 = 111/128 and -0.5 (((1.25 - 5) 1.25 + 8) 1.25 - 4) =
  # -9/128; renormalised over the two taps that exist (the rest fall outside the image).
  np.testing.assert_allclose(clean_resize.bicubic_matrix(2, 4)[0], [111 / 102, -9 / 102])
  # Shrinking widens the kernel by in / out (antialiasing): more than the 4 taps of upsampling.
  taps = lambda r: np.count_nonzero(r, axis=1).max()
  assert taps(clean_resize.bicubic_matrix(32, 299)) == 4
  assert taps(clean_resize.bicubic_matrix(400, 299)) == 6


def test_quantize():
  x = np.array([0.999, 1.0, -1.0, -0.999, 0.0, 1.0 / 127.5 - 1], np.float32)
  np.testing.assert_array_equal(clean_resize.quantize(x), [255, 255, 0, 0, 128, 1])
  assert clean_resize.quantize(x).dtype == np.uint8
  u = _uint8_images(2, 16, 16, seed=5)
  np.testing.assert_array_equal(clean_resize.quantize(u.astype(np.float32) / 127.5 - 1), u)
  # The clean pipeline of floats is that of their quantized uint8, then x / 127.5 - 1.
  f = np.random.RandomState(6).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
  via_floats = np.asarray(inception.preprocess(f, size=40))
  np.testing.assert_array_equal(via_floats, inception.preprocess(clean_resize.quantize(f), size=40))
  np.testing.assert_allclose(via_floats, clean_resize.clean_resize(clean_resize.quantize(f), 40)
                             / 127.5 - 1, atol=1e-6)
  with pytest.raises(UserError, match="resize='nearest': expected one of 'clean'"):
    inception.preprocess(f, resize='nearest')


# ----------------------------------------------------------------------------------------------
# The evaluator (random weights, 75 x 75: fast, not FID).


@pytest.fixture(scope='module')
def evaluator():
  net = inception.InceptionFeatures.random(seed=0, resolution=75)
  return inception_eval.InceptionEvaluator(net, _uint8_images(12, 32, 32, seed=7), batch_size=12)


def test_evaluator_fd(evaluator):
  """FD 0 for the real images themselves (as generator floats), > 0 for brighter ones; every
  metric of ``__call__``."""
  real = _uint8_images(12, 32, 32, seed=7)
  as_floats = real.astype(np.float32) / 127.5 - 1
  same = evaluator.quick(as_floats, labels=np.arange(12))  # labels: accepted, ignored
  assert set(same) == {'fd'}
  chex.assert_shape(evaluator.real_features, (12, inception.FEATURE_DIM))
  far = evaluator(np.clip(as_floats + 0.5, -1, 1), kid_subsets=3)
  assert far['fd'] > 0 and same['fd'] <= 1e-6 * far['fd']
  assert far['kid'] > 0 and far['num_real'] == far['num_fake'] == 12
  assert far['resize'] == 'clean'
  assert {'kid_std', 'precision', 'recall', 'density', 'coverage'} <= set(far)


@pytest.mark.parametrize('n_fake', [5, 30])
def test_frechet_distance_to_is_metrics_fd(n_fake):
  """The n < d shortcut (n_fake = 5 < d = 20) and the general case equal ``metrics.fd``."""
  rng = np.random.RandomState(n_fake)
  real = rng.standard_normal((40, 20)) @ rng.standard_normal((20, 20))
  fake = 0.5 + rng.standard_normal((n_fake, 20)) @ rng.standard_normal((20, 20))
  got = inception_eval.frechet_distance_to(metrics.gaussian_stats(real), fake)
  assert got == pytest.approx(metrics.fd(real, fake), rel=1e-7)
  assert inception_eval.frechet_distance_to(metrics.gaussian_stats(fake), fake) < 1e-9 * got


def test_for_rgb_data_without_weights_says_once(tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(inception_eval, '_said_weights_missing', False)
  path = str(tmp_path / 'absent' / 'inception_fid.npz')
  real = _uint8_images(4, 8, 8)
  assert inception_eval.InceptionEvaluator.for_rgb_data(real, path) is None
  assert inception_eval.InceptionEvaluator.for_rgb_data(real, path) is None
  lines = capsys.readouterr().out.splitlines()
  assert lines == [f'in-training FID is off: no Inception weights at {path}; convert them with '
                   f'{inception.convert_command(path)}']
  # The default path follows $GAN_JAX_CACHE, and the line is not said again.
  monkeypatch.setenv('GAN_JAX_CACHE', str(tmp_path / 'cache'))
  assert inception_eval.InceptionEvaluator.for_rgb_data(real) is None
  assert capsys.readouterr().out == ''


def test_for_rgb_data_with_weights(tmp_path):
  path = str(tmp_path / 'inception_fid.npz')
  inception.save_weights(inception.random_weights(seed=1), path)
  # Batches of 4 at 299 x 299: the compilation test_inception.py's forwards use.
  ev = inception_eval.InceptionEvaluator.for_rgb_data(_uint8_images(3, 8, 8, c=1), path,
                                                      say=pytest.fail, batch_size=4)
  assert isinstance(ev, inception_eval.InceptionEvaluator) and ev.net.resize == 'clean'
  chex.assert_shape(ev.real_features, (3, inception.FEATURE_DIM))
