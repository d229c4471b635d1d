"""FID InceptionV3 (``gan_jax.evaluation.inception``) against pytorch-fid's definition.

- Preprocessing (``resize='bilinear'``, pytorch-fid's) against
  ``F.interpolate(bilinear, align_corners=False)`` then ``2 x - 1``, and the checks that nearest,
  antialiased or [0, 1]-scaled inputs would fail. The default ``'clean'`` resize is tested
  against clean-fid in test_inception_eval.py.
- The network: a synthetic pytorch-fid state_dict (built by an independent torch.nn.functional
  rendering of pytorch-fid's FID InceptionV3, keyed by its names), saved with torch.save, then
  converted, loaded and run at 299 x 299, must give the reference's pool3 features.
- Features are [N, 2048], deterministic and independent of batching; FD wiring; every error.

The 299 x 299 forwards share one compilation (batches of 4) and take a few seconds.
"""

import os
import subprocess
import sys

import chex
import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.evaluation import convert_inception, inception, metrics
from conftest import REPO, subprocess_env


def _torch():
  return pytest.importorskip('torch')


def _uint8_images(n, h, w, c=3, seed=0):
  return np.random.RandomState(seed).randint(0, 256, size=(n, h, w, c)).astype(np.uint8)


def _to_torch01(images_uint8):
  torch = _torch()
  return torch.from_numpy(images_uint8.astype(np.float32) / 255.0).permute(0, 3, 1, 2)


def _torch_preprocess(images_uint8, mode='bilinear', antialias=False):
  """pytorch-fid's InceptionV3.forward input steps on ToTensor-style [0, 1] NCHW input."""
  torch = _torch()
  x = _to_torch01(images_uint8)
  if x.shape[1] == 1:
    x = x.repeat(1, 3, 1, 1)
  kw = {} if mode == 'nearest' else {'align_corners': False, 'antialias': antialias}
  x = torch.nn.functional.interpolate(x, size=(299, 299), mode=mode, **kw)
  return (2 * x - 1).permute(0, 2, 3, 1).numpy()


# ----------------------------------------------------------------------------------------------
# Preprocessing.


def test_bilinear_matrix_by_hand():
  # Upsampling 2 -> 4: sources at max((o + .5) / 2 - .5, 0) = 0, .25, .75, 1.25 (clamped pair).
  np.testing.assert_allclose(inception.bilinear_matrix(2, 4),
                             [[1, 0], [.75, .25], [.25, .75], [0, 1]])
  # Shrinking 4 -> 2: sources at .5 and 2.5; two taps each, no antialiasing.
  np.testing.assert_allclose(inception.bilinear_matrix(4, 2), [[.5, .5, 0, 0], [0, 0, .5, .5]])
  np.testing.assert_allclose(inception.bilinear_matrix(5, 5), np.eye(5))


@pytest.mark.parametrize('size', [13, 310, 517])
def test_bilinear_matrix_is_pytorchs_bit_for_bit(size):
  torch = _torch()
  one_hot = torch.eye(size).reshape(size, 1, 1, size)
  theirs = torch.nn.functional.interpolate(one_hot, size=(1, 299), mode='bilinear',
                                           align_corners=False)[:, 0, 0, :].numpy().T
  np.testing.assert_array_equal(inception.bilinear_matrix(size, 299), theirs)


@pytest.mark.parametrize('shape', [(2, 13, 21, 3), (1, 310, 304, 3), (2, 9, 7, 1)])
def test_preprocess_matches_pytorch_fid(shape):
  """Up- and downsampling and grayscale: equal to torch to 1e-5, and discriminating."""
  x = _uint8_images(*shape)
  ref = _torch_preprocess(x)
  ours = np.asarray(inception.preprocess(x, resize='bilinear'))
  chex.assert_shape(ours, (shape[0], 299, 299, 3))
  np.testing.assert_allclose(ours, ref, atol=1e-5)
  assert ours.min() >= -1 - 1e-6 and ours.max() <= 1 + 1e-6
  # Our [-1, 1] float contract gives the same input to the network.
  np.testing.assert_allclose(
      inception.preprocess(x.astype(np.float32) / 127.5 - 1, resize='bilinear'), ref, atol=1e-5)
  # The test discriminates: other resizes or the [0, 1] range are far from the reference.
  assert np.abs(_torch_preprocess(x, mode='nearest') - ours).max() > 0.05
  assert np.abs((ref + 1) / 2 - ours).max() > 0.4
  if shape[1] > 299:  # shrinking: antialiased bilinear (jax.image.resize's default) differs
    assert np.abs(_torch_preprocess(x, antialias=True) - ours).max() > 0.05


@pytest.mark.parametrize('images,message', [
    (np.full((2, 8, 8, 3), 200.0, np.float32), 'float images span [200, 200]'),
    (np.zeros((2, 8, 8, 2), np.uint8), 'shape [2, 8, 8, 2]'),
    (np.zeros((2, 8, 8, 3), np.int32), 'dtype int32'),
    (np.full((2, 8, 8, 3), np.nan, np.float32), 'float images span [nan, nan]'),
])
def test_preprocess_rejects_inputs_outside_the_contract(images, message):
  with pytest.raises(UserError, match='uint8 in \\[0, 255\\] or float in \\[-1, 1\\]') as e:
    inception.preprocess(images)
  assert message in str(e.value)


# ----------------------------------------------------------------------------------------------
# Features at 299 x 299 with random weights.


@pytest.fixture(scope='module')
def random_net():
  return inception.InceptionFeatures.random(seed=0)


@pytest.fixture(scope='module')
def four_images(random_net):
  """Four images; their features in one batch of 4, and in batches of 1 and 3 (each
  zero-padded to 4: one compilation serves all the 299 x 299 forwards of this file)."""
  x = _uint8_images(4, 32, 32, seed=1)
  return (x, random_net.features(x, batch_size=4), random_net.features(x[:1], batch_size=4),
          random_net.features(x[1:], batch_size=4))


def test_features_shape_and_batching(four_images):
  x, f, f_first, f_rest = four_images
  chex.assert_shape(f, (4, inception.FEATURE_DIM))
  chex.assert_shape([f_first, f_rest], [(1, 2048), (3, 2048)])
  chex.assert_tree_all_finite(f)
  assert f.dtype == np.float32
  assert np.all(f >= 0)  # means of ReLU outputs
  assert np.abs(f[0] - f[1]).max() > 1e-2 * np.abs(f).max()  # images are told apart
  # Each image's features do not depend on the batch it is in (nor on the padding).
  np.testing.assert_allclose(np.concatenate([f_first, f_rest]), f, rtol=1e-5,
                             atol=1e-5 * np.abs(f).max())


def test_inception_fd_reuses_metrics_fd_on_deterministic_features(random_net, four_images,
                                                                  tmp_path, monkeypatch):
  """inception_fd = metrics.fd(features(real), features(fake)), and features of the same batch
  are bit-identical across calls and across a save/load of the weights. metrics.fd is tested
  against closed forms in test_metrics.py; here it is replaced, because its 2048-d
  eigendecompositions take ~40 s on two busy cores."""
  path = str(tmp_path / 'w.npz')
  inception.save_weights(random_net.variables, path)
  calls = []
  monkeypatch.setattr(metrics, 'fd', lambda a, b: calls.append((a, b)) or 123.5)
  x, _, f_first, f_rest = four_images
  assert inception.inception_fd(x[:1], x[1:], path, batch_size=4) == 123.5
  (got_real, got_fake), = calls
  np.testing.assert_array_equal(got_real, f_first)
  np.testing.assert_array_equal(got_fake, f_rest)


# ----------------------------------------------------------------------------------------------
# The converter against an independent PyTorch rendering of pytorch-fid's network.


class _TorchFIDInception:
  """pytorch-fid's FID InceptionV3 (fid_inception_v3 + InceptionV3.forward) written with
  torch.nn.functional on its state_dict. A missing BasicConv2d's tensors are created on first
  use (He-scaled conv, BN around identity), so one pass builds a synthetic state_dict."""

  def __init__(self, seed=0):
    self.torch = _torch()
    self.sd = {}
    self.gen = self.torch.Generator().manual_seed(seed)

  def _rand(self, *shape):
    return self.torch.rand(*shape, generator=self.gen)

  def conv(self, x, name, cout, k, stride=1, pad=0):
    torch, f = self.torch, self.torch.nn.functional
    k = (k, k) if isinstance(k, int) else k
    if name + '.conv.weight' not in self.sd:
      cin = x.shape[1]
      self.sd[name + '.conv.weight'] = (torch.randn(cout, cin, *k, generator=self.gen)
                                        * (2.0 / (cin * k[0] * k[1])) ** 0.5)
      self.sd[name + '.bn.weight'] = 0.8 + 0.4 * self._rand(cout)
      self.sd[name + '.bn.bias'] = 0.2 * self._rand(cout) - 0.1
      self.sd[name + '.bn.running_mean'] = 0.2 * self._rand(cout) - 0.1
      self.sd[name + '.bn.running_var'] = 0.5 + self._rand(cout)
      self.sd[name + '.bn.num_batches_tracked'] = torch.tensor(0)
    p = lambda s: self.sd[f'{name}.{s}']
    x = f.conv2d(x, p('conv.weight'), stride=stride, padding=pad)
    x = f.batch_norm(x, p('bn.running_mean'), p('bn.running_var'), p('bn.weight'), p('bn.bias'),
                     training=False, eps=0.001)
    return f.relu(x)

  def _avg(self, x):
    return self.torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

  def block_a(self, x, n, pool_features):
    c = lambda *a, **k: self.conv(*a, **k)
    b1 = c(x, f'{n}.branch1x1', 64, 1)
    b5 = c(c(x, f'{n}.branch5x5_1', 48, 1), f'{n}.branch5x5_2', 64, 5, pad=2)
    b3 = c(x, f'{n}.branch3x3dbl_1', 64, 1)
    b3 = c(c(b3, f'{n}.branch3x3dbl_2', 96, 3, pad=1), f'{n}.branch3x3dbl_3', 96, 3, pad=1)
    bp = c(self._avg(x), f'{n}.branch_pool', pool_features, 1)
    return self.torch.cat([b1, b5, b3, bp], 1)

  def block_b(self, x, n):
    c = lambda *a, **k: self.conv(*a, **k)
    b3 = c(x, f'{n}.branch3x3', 384, 3, stride=2)
    bd = c(c(x, f'{n}.branch3x3dbl_1', 64, 1), f'{n}.branch3x3dbl_2', 96, 3, pad=1)
    bd = c(bd, f'{n}.branch3x3dbl_3', 96, 3, stride=2)
    return self.torch.cat([b3, bd, self.torch.nn.functional.max_pool2d(x, 3, 2)], 1)

  def block_c(self, x, n, c7):
    c = lambda *a, **k: self.conv(*a, **k)
    b1 = c(x, f'{n}.branch1x1', 192, 1)
    b7 = c(x, f'{n}.branch7x7_1', c7, 1)
    b7 = c(b7, f'{n}.branch7x7_2', c7, (1, 7), pad=(0, 3))
    b7 = c(b7, f'{n}.branch7x7_3', 192, (7, 1), pad=(3, 0))
    bd = c(x, f'{n}.branch7x7dbl_1', c7, 1)
    bd = c(bd, f'{n}.branch7x7dbl_2', c7, (7, 1), pad=(3, 0))
    bd = c(bd, f'{n}.branch7x7dbl_3', c7, (1, 7), pad=(0, 3))
    bd = c(bd, f'{n}.branch7x7dbl_4', c7, (7, 1), pad=(3, 0))
    bd = c(bd, f'{n}.branch7x7dbl_5', 192, (1, 7), pad=(0, 3))
    bp = c(self._avg(x), f'{n}.branch_pool', 192, 1)
    return self.torch.cat([b1, b7, bd, bp], 1)

  def block_d(self, x, n):
    c = lambda *a, **k: self.conv(*a, **k)
    b3 = c(c(x, f'{n}.branch3x3_1', 192, 1), f'{n}.branch3x3_2', 320, 3, stride=2)
    b7 = c(x, f'{n}.branch7x7x3_1', 192, 1)
    b7 = c(b7, f'{n}.branch7x7x3_2', 192, (1, 7), pad=(0, 3))
    b7 = c(b7, f'{n}.branch7x7x3_3', 192, (7, 1), pad=(3, 0))
    b7 = c(b7, f'{n}.branch7x7x3_4', 192, 3, stride=2)
    return self.torch.cat([b3, b7, self.torch.nn.functional.max_pool2d(x, 3, 2)], 1)

  def block_e(self, x, n, max_pool):
    c = lambda *a, **k: self.conv(*a, **k)
    cat = self.torch.cat
    b1 = c(x, f'{n}.branch1x1', 320, 1)
    b3 = c(x, f'{n}.branch3x3_1', 384, 1)
    b3 = cat([c(b3, f'{n}.branch3x3_2a', 384, (1, 3), pad=(0, 1)),
              c(b3, f'{n}.branch3x3_2b', 384, (3, 1), pad=(1, 0))], 1)
    bd = c(c(x, f'{n}.branch3x3dbl_1', 448, 1), f'{n}.branch3x3dbl_2', 384, 3, pad=1)
    bd = cat([c(bd, f'{n}.branch3x3dbl_3a', 384, (1, 3), pad=(0, 1)),
              c(bd, f'{n}.branch3x3dbl_3b', 384, (3, 1), pad=(1, 0))], 1)
    pooled = (self.torch.nn.functional.max_pool2d(x, 3, 1, 1) if max_pool else self._avg(x))
    return cat([b1, b3, bd, c(pooled, f'{n}.branch_pool', 192, 1)], 1)

  def network(self, x):
    """``x [N, 3, H, W]`` in [-1, 1] -> pool3 ``[N, 2048]``."""
    mp = lambda t: self.torch.nn.functional.max_pool2d(t, 3, 2)
    x = self.conv(x, 'Conv2d_1a_3x3', 32, 3, stride=2)
    x = self.conv(x, 'Conv2d_2a_3x3', 32, 3)
    x = mp(self.conv(x, 'Conv2d_2b_3x3', 64, 3, pad=1))
    x = self.conv(x, 'Conv2d_3b_1x1', 80, 1)
    x = mp(self.conv(x, 'Conv2d_4a_3x3', 192, 3))
    for n, pf in (('Mixed_5b', 32), ('Mixed_5c', 64), ('Mixed_5d', 64)):
      x = self.block_a(x, n, pf)
    x = self.block_b(x, 'Mixed_6a')
    for n, c7 in (('Mixed_6b', 128), ('Mixed_6c', 160), ('Mixed_6d', 160), ('Mixed_6e', 192)):
      x = self.block_c(x, n, c7)
    x = self.block_d(x, 'Mixed_7a')
    x = self.block_e(x, 'Mixed_7b', max_pool=False)
    x = self.block_e(x, 'Mixed_7c', max_pool=True)
    return x.mean((2, 3))

  def features(self, images_uint8):
    with self.torch.no_grad():
      x = self.torch.from_numpy(_torch_preprocess(images_uint8)).permute(0, 3, 1, 2)
      return self.network(x).numpy()


@pytest.fixture(scope='module')
def torch_reference():
  torch = _torch()
  ref = _TorchFIDInception(seed=0)
  with torch.no_grad():
    ref.network(torch.zeros(1, 3, 75, 75))  # 75 x 75: the smallest input; builds every tensor
  return ref


@pytest.fixture(scope='module')
def pth_file(torch_reference, tmp_path_factory):
  """A pytorch-fid-like .pth: the reference's tensors plus the fc head pool3 does not need."""
  torch = _torch()
  sd = dict(torch_reference.sd)
  sd['fc.weight'] = torch.zeros(1008, 2048)
  sd['fc.bias'] = torch.zeros(1008)
  path = str(tmp_path_factory.mktemp('pth') / 'fid_inception_synthetic.pth')
  torch.save(sd, path)
  return path


def test_converted_weights_reproduce_the_pytorch_reference(torch_reference, pth_file, tmp_path):
  out = str(tmp_path / 'inception_fid.npz')
  summary = convert_inception.convert(pth_file, out)
  assert summary['tensors'] == 470 and summary['parameters'] == 21_820_000
  variables = inception.load_weights(out)
  # Layout of one non-square kernel: torch [O, I, 1, 7] -> ours [1, 7, I, O].
  np.testing.assert_array_equal(
      variables['params']['Mixed_6b']['branch7x7_2']['conv']['kernel'],
      torch_reference.sd['Mixed_6b.branch7x7_2.conv.weight'].numpy().transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables['batch_stats']['Mixed_7c']['branch_pool']['bn']['var'],
                                torch_reference.sd['Mixed_7c.branch_pool.bn.running_var'].numpy())
  x = _uint8_images(3, 24, 40, seed=4)
  ours = inception.InceptionFeatures.load(out, resize='bilinear').features(x, batch_size=4)
  ref = torch_reference.features(x)
  chex.assert_shape(ref, (3, 2048))
  assert np.abs(ref[0] - ref[1]).max() > 1e-2 * np.abs(ref).max()
  np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def _numpy_state_dict():
  shapes = inception.expected_shapes()
  sd = {}
  for name, shape in shapes.items():
    shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape
    sd[convert_inception.torch_name(name)] = np.zeros(shape, np.float32)
  return sd


def test_converter_names_key_and_shape_mismatches():
  sd = _numpy_state_dict()
  assert len(convert_inception.from_state_dict(sd)) == 470
  missing = {k: v for k, v in sd.items() if k != 'Mixed_7c.branch_pool.bn.running_var'}
  with pytest.raises(UserError, match=r"1 missing keys \['Mixed_7c.branch_pool.bn.running_var'\], "
                                      r'0 unexpected keys'):
    convert_inception.from_state_dict(missing)
  extra = dict(sd, **{'Mixed_8a.branch1x1.conv.weight': np.zeros((1, 1, 1, 1))})
  with pytest.raises(UserError, match=r"0 missing keys \[\], 1 unexpected keys "
                                      r"\['Mixed_8a.branch1x1.conv.weight'\]"):
    convert_inception.from_state_dict(extra)
  wrong = dict(sd, **{'Conv2d_1a_3x3.conv.weight': np.zeros((32, 3, 5, 5))})
  with pytest.raises(UserError, match=r'Conv2d_1a_3x3.conv.weight has shape \[32, 3, 5, 5\], '
                                      r'expected \[32, 3, 3, 3\]'):
    convert_inception.from_state_dict(wrong)
  # A torchvision (not FID) state_dict lacks nothing but has other heads: still accepted only
  # when its extra keys are the dropped fc / AuxLogits / num_batches_tracked.
  ok = dict(sd, **{'fc.weight': 0, 'AuxLogits.fc.bias': 0, 'Mixed_5b.branch1x1.bn.'
                                                          'num_batches_tracked': 0})
  assert len(convert_inception.from_state_dict(ok)) == 470


def test_converter_file_errors(tmp_path):
  _torch()
  garbage = tmp_path / 'notes.pth'
  garbage.write_text('not a checkpoint')
  with pytest.raises(UserError, match='is not a readable PyTorch file'):
    convert_inception.convert(str(garbage), str(tmp_path / 'o.npz'))
  corrupt = tmp_path / 'pt_inception-2015-12-05-6726825d.pth'
  corrupt.write_bytes(b'truncated download')
  with pytest.raises(UserError, match='name promises 6726825d; the download is corrupt'):
    convert_inception.convert(str(corrupt), str(tmp_path / 'o.npz'))
  assert not (tmp_path / 'o.npz').exists()


def test_converter_cli_missing_file_is_one_line_exit_2(tmp_path):
  proc = subprocess.run(
      [sys.executable, '-m', 'gan_jax.evaluation.convert_inception', '--src',
       str(tmp_path / 'nope.pth'), '--out', str(tmp_path / 'o.npz')],
      cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=120)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1, proc.stderr
  assert 'nope.pth does not exist' in lines[0] and inception.PTH_URL in lines[0]


# ----------------------------------------------------------------------------------------------
# Our weight file.


def test_missing_weights_file_names_path_and_command(tmp_path):
  path = str(tmp_path / 'absent' / 'inception_fid.npz')
  x = _uint8_images(2, 8, 8)
  with pytest.raises(UserError) as e:
    inception.inception_fd(x, x, path)
  assert str(e.value) == (
      f'Inception weights {path} not found (nothing is downloaded); get '
      'pt_inception-2015-12-05-6726825d.pth from pytorch-fid and convert it once: '
      'python -m gan_jax.evaluation.convert_inception --src pt_inception-2015-12-05-6726825d.pth '
      f'--out {path}')


def test_weight_file_format_and_contents_are_checked(tmp_path):
  flat = inception.random_weights(seed=3)
  not_npz = tmp_path / 'a.npz'
  not_npz.write_text('hello')
  with pytest.raises(UserError, match='not a readable .npz'):
    inception.load_weights(str(not_npz))
  foreign = str(tmp_path / 'b.npz')
  np.savez(foreign, **flat)  # right tensors, but not written by us
  with pytest.raises(UserError, match="format None, expected 'gan_jax.inception_fid.v1'"):
    inception.load_weights(foreign)
  with pytest.raises(UserError, match='1 missing entries'):
    inception.save_weights({k: v for k, v in flat.items() if 'Mixed_6e' not in k or 'bn/var' not in
                            k or 'branch_pool' not in k}, str(tmp_path / 'c.npz'))
  good = str(tmp_path / 'd.npz')
  inception.save_weights(flat, good, source='test')
  loaded = inception.flatten(inception.load_weights(good))
  assert loaded.keys() == flat.keys()
  for k in flat:
    np.testing.assert_array_equal(loaded[k], flat[k])
  assert set(inception.expected_shapes()) == set(flat) and len(flat) == 470
