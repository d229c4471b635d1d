"""Tests for gan_jax.data: IDX reading, sources, sampling, TFDS, downloads, toy2d, auto.

Everything except the `real_mnist` tests runs on self-written fixtures in tmp_path, so the
suite passes on a machine without the shared datasets and without network access.
"""

import functools
import gzip
import hashlib
import http.server
import os
import threading

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import data
from gan_jax.data import download
from gan_jax.data import idx
from gan_jax.data import names
from gan_jax.errors import DataError, UserError

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The folder holding mnist/ and fashion-mnist/. Read once at import, before any test
# monkeypatches $GAN_JAX_DATA_DIR.
SHARED = os.environ.get('GAN_JAX_DATA_DIR') or os.path.join(
    os.path.dirname(_REPO), 'shared', 'datasets')
real_mnist = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SHARED, 'mnist')),
    reason=f'real MNIST not found in {SHARED}/mnist (set GAN_JAX_DATA_DIR to its parent)')

_IDX_CODES = {np.dtype('u1'): 0x08, np.dtype('i1'): 0x09, np.dtype('>i2'): 0x0B,
              np.dtype('>i4'): 0x0C, np.dtype('>f4'): 0x0D, np.dtype('>f8'): 0x0E}


def idx_bytes(array) -> bytes:
  """Serialises an array to IDX (magic, big-endian dims, big-endian payload)."""
  array = np.asarray(array)
  big = array.dtype.newbyteorder('>') if array.dtype.itemsize > 1 else array.dtype
  header = bytes([0, 0, _IDX_CODES[np.dtype(big)], array.ndim])
  header += b''.join(int(d).to_bytes(4, 'big') for d in array.shape)
  return header + array.astype(big).tobytes()


def write_idx(path, array, compress=True) -> str:
  raw = idx_bytes(array)
  with open(path, 'wb') as f:
    f.write(gzip.compress(raw) if compress else raw)
  return str(path)


def make_idx_dataset(directory, n_train=20, n_test=7, hw=(6, 5), seed=0) -> dict:
  """Writes a tiny MNIST-style dataset (both splits, gzip'd) and returns its arrays."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  arrays = {}
  for prefix, n in (('train', n_train), ('t10k', n_test)):
    images = rng.integers(0, 256, (n,) + hw, dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # So the [-1, 1] range is actually reached.
    labels = (np.arange(n) % 4).astype(np.uint8)
    write_idx(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), images)
    write_idx(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'), labels)
    arrays[prefix] = (images, labels)
  return arrays


def assert_one_line(error):
  message = str(error.value if hasattr(error, 'value') else error)
  assert '\n' not in message, message
  return message


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
  """Keeps tests off the real home dir, $GAN_JAX_DATA_DIR and /usr/share/datasets."""
  monkeypatch.setenv('HOME', str(tmp_path / 'home'))
  monkeypatch.delenv(names.DATA_DIR_ENV, raising=False)
  monkeypatch.setattr(names, 'SYSTEM_DATA_DIRS', ())


# ---------------------------------------------------------------------------------------------
# IDX reader.


@pytest.mark.parametrize('dtype', ['u1', 'i1', '>i2', '>i4', '>f4', '>f8'])
@pytest.mark.parametrize('compress', [True, False])
def test_read_idx_round_trip(tmp_path, dtype, compress):
  rng = np.random.default_rng(1)
  array = (rng.normal(size=(3, 4, 2)) * 50).astype(dtype)
  got = idx.read_idx(write_idx(tmp_path / 'x-idx3', array, compress))
  np.testing.assert_array_equal(got, array)
  assert got.dtype == np.dtype(dtype).newbyteorder('=')
  assert got.flags.writeable


def test_read_idx_truncated_gzip(tmp_path):
  path = tmp_path / 'train-images-idx3-ubyte.gz'
  write_idx(path, np.arange(2000, dtype=np.uint8).reshape(20, 10, 10) % 7)
  blob = path.read_bytes()
  path.write_bytes(blob[:len(blob) // 2])
  with pytest.raises(DataError) as e:
    idx.read_idx(path)
  message = assert_one_line(e)
  assert str(path) in message
  assert 'truncated' in message and 'expected 2016 bytes' in message and 'found' in message


def test_read_idx_gzip_missing_footer(tmp_path):
  # The payload decompresses in full but the stream has no end (CRC/size footer cut off):
  # still an incomplete download, so it must not pass as valid.
  path = tmp_path / 'labels.gz'
  write_idx(path, np.arange(10, dtype=np.uint8))
  path.write_bytes(path.read_bytes()[:-8])
  with pytest.raises(DataError, match='gzip stream is truncated') as e:
    idx.read_idx(path)
  assert str(path) in assert_one_line(e)


def test_read_idx_short_payload(tmp_path):
  path = tmp_path / 'labels-idx1'
  path.write_bytes(idx_bytes(np.arange(10, dtype=np.uint8))[:-3])
  with pytest.raises(DataError, match='expected 18 bytes .* found 15') as e:
    idx.read_idx(path)
  assert str(path) in assert_one_line(e)


def test_read_idx_bad_magic(tmp_path):
  path = tmp_path / 'bad.gz'
  path.write_bytes(gzip.compress(b'\x12\x34\x08\x01' + bytes(8)))
  with pytest.raises(DataError) as e:
    idx.read_idx(path)
  message = assert_one_line(e)
  assert str(path) in message and '12340801' in message


def test_read_idx_corrupt_gzip(tmp_path):
  path = tmp_path / 'corrupt.gz'
  path.write_bytes(b'\x1f\x8b\x08\x00' + b'garbage' * 10)
  with pytest.raises(DataError, match='not valid gzip') as e:
    idx.read_idx(path)
  assert str(path) in assert_one_line(e)


def test_data_error_is_user_error():
  assert issubclass(DataError, UserError)


# ---------------------------------------------------------------------------------------------
# IDX datasets and directory lookup.


def test_load_idx_dataset_fixture(tmp_path):
  written = make_idx_dataset(tmp_path)
  for split, prefix, n in (('train', 'train', 20), ('test', 't10k', 7)):
    arrays = data.load_idx_dataset(tmp_path, split)
    chex.assert_shape(arrays['image'], (n, 6, 5, 1))
    assert arrays['image'].dtype == np.uint8 and arrays['label'].dtype == np.int32
    np.testing.assert_array_equal(arrays['image'][..., 0], written[prefix][0])
    np.testing.assert_array_equal(arrays['label'], written[prefix][1])


def test_load_idx_plain_and_dotted_names(tmp_path):
  images = np.full((3, 2, 2), 7, np.uint8)
  write_idx(tmp_path / 't10k-images.idx3-ubyte', images, compress=False)
  write_idx(tmp_path / 't10k-labels-idx1-ubyte', np.arange(3, dtype=np.uint8), compress=False)
  arrays = data.load_idx_dataset(tmp_path, 'test')
  np.testing.assert_array_equal(arrays['image'][..., 0], images)


def test_load_idx_length_mismatch(tmp_path):
  make_idx_dataset(tmp_path)
  write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', np.zeros(19, np.uint8))
  with pytest.raises(DataError) as e:
    data.load_idx_dataset(tmp_path, 'train')
  message = assert_one_line(e)
  assert '20 images' in message and '19 labels' in message


def test_load_idx_missing_dir(tmp_path):
  missing = tmp_path / 'nope'
  with pytest.raises(DataError) as e:
    data.load_idx_dataset(missing, 'train')
  assert str(missing) in assert_one_line(e)
  with pytest.raises(DataError, match='does not exist') as e:
    data.load_source({'source': 'idx', 'name': 'mnist', 'dir': str(missing)})
  assert str(missing) in assert_one_line(e)


def test_load_idx_missing_files_and_bad_split(tmp_path):
  with pytest.raises(DataError, match='lacks train-images-idx3-ubyte') as e:
    data.load_source({'source': 'idx', 'name': 'mnist', 'dir': str(tmp_path)})
  assert str(tmp_path) in assert_one_line(e)
  make_idx_dataset(tmp_path)
  with pytest.raises(DataError, match="'validation'"):
    data.load_source({'source': 'idx', 'name': 'mnist', 'dir': str(tmp_path)}, 'validation')


def test_idx_lookup_env_and_spellings(tmp_path, monkeypatch):
  root = tmp_path / 'datasets'
  make_idx_dataset(root / 'fashion-mnist', n_train=9)
  monkeypatch.setenv(names.DATA_DIR_ENV, str(root))
  for name in ('fashion_mnist', 'fashion-mnist'):
    src = data.load_source({'source': 'idx', 'name': name})
    assert src.info['name'] == 'fashion_mnist'
    assert src.info['num_examples'] == 9 and src.info['num_classes'] == 10
    assert src.info['dir'] == str(root / 'fashion-mnist')
  # config.data.dir may also point at the parent of the dataset folder.
  monkeypatch.delenv(names.DATA_DIR_ENV)
  src = data.load_source({'source': 'idx', 'name': 'fashion_mnist', 'dir': str(root)})
  assert src.info['num_examples'] == 9
  # Nothing anywhere: the message lists the searched folders.
  with pytest.raises(DataError, match='mnist') as e:
    data.load_source({'source': 'idx', 'name': 'mnist'})
  assert str(tmp_path / 'home') in assert_one_line(e)


# ---------------------------------------------------------------------------------------------
# Real MNIST (skipped without the shared copy).


@real_mnist
def test_real_mnist_idx():
  images = idx.read_idx(os.path.join(SHARED, 'mnist', 'train-images-idx3-ubyte.gz'))
  labels = idx.read_idx(os.path.join(SHARED, 'mnist', 'train-labels-idx1-ubyte.gz'))
  chex.assert_shape(images, (60000, 28, 28))
  assert images.dtype == np.uint8 and labels.shape == (60000,)
  assert labels.min() == 0 and labels.max() == 9 and len(np.unique(labels)) == 10
  test = data.load_idx_dataset(os.path.join(SHARED, 'mnist'), 'test')
  chex.assert_shape(test['image'], (10000, 28, 28, 1))
  chex.assert_shape(test['label'], (10000,))


@real_mnist
def test_real_sources_via_env(monkeypatch):
  monkeypatch.setenv(names.DATA_DIR_ENV, SHARED)
  for name in ('mnist', 'fashion-mnist'):
    if not os.path.isdir(os.path.join(SHARED, name)):
      continue
    src = data.load_source({'source': 'auto', 'name': name}, split='test')
    assert src.info['source'] == 'idx' and src.info['shape'] == (28, 28, 1)
    assert src.info['num_examples'] == 10000 and src.info['num_classes'] == 10
    batch = jax.jit(src.draw, static_argnames='batch_size')(
        jax.device_put(src.arrays), jax.random.key(0), batch_size=16)
    chex.assert_shape(batch['image'], (16, 28, 28, 1))


@real_mnist
def test_builtin_checksums_match_shared_files():
  for name, folder in (('mnist', 'mnist'), ('fashion_mnist', 'fashion-mnist')):
    if not os.path.isdir(os.path.join(SHARED, folder)):
      continue
    for filename in download.FILES:
      got = download.decompressed_sha256(os.path.join(SHARED, folder, filename))
      assert got == download.SHA256[name][filename], (name, filename)


# ---------------------------------------------------------------------------------------------
# Source and draw.


@pytest.fixture
def fixture_source(tmp_path):
  make_idx_dataset(tmp_path / 'mnist', n_train=50)
  return data.load_source({'source': 'idx', 'name': 'mnist', 'dir': str(tmp_path / 'mnist')})


def test_source_info_and_arrays(fixture_source):
  src = fixture_source
  assert isinstance(src, data.Source)
  assert src.info['shape'] == (6, 5, 1) and src.info['source'] == 'idx'
  assert src.info['num_examples'] == 50 and src.info['num_classes'] == 10
  assert set(src.arrays) == {'image', 'label'}
  assert src.arrays['image'].dtype == np.uint8 and src.arrays['label'].dtype == np.int32


def test_draw_contract(fixture_source):
  src = fixture_source
  arrays = jax.device_put(src.arrays)
  key = jax.random.key(3)
  batch = src.draw(arrays, key, 8)
  chex.assert_shape(batch['image'], (8, 6, 5, 1))
  chex.assert_shape(batch['label'], (8,))
  assert batch['image'].dtype == jnp.float32 and batch['label'].dtype == jnp.int32
  # The trainer relies on this exact recipe to replay batches after a resume.
  expected_idx = np.asarray(jax.random.randint(key, (8,), 0, 50))
  np.testing.assert_allclose(
      batch['image'], src.arrays['image'][expected_idx].astype(np.float32) / 127.5 - 1,
      atol=1e-6)
  np.testing.assert_array_equal(batch['label'], src.arrays['label'][expected_idx])


def test_draw_deterministic_jittable_and_in_range(fixture_source):
  src = fixture_source
  arrays = jax.device_put(src.arrays)
  jitted = jax.jit(functools.partial(src.draw, batch_size=512))
  jitted_static = jax.jit(src.draw, static_argnames='batch_size')
  a = jitted(arrays, jax.random.key(0))
  chex.assert_trees_all_equal(a, jitted(arrays, jax.random.key(0)))
  chex.assert_trees_all_equal(a, jitted_static(arrays, jax.random.key(0), batch_size=512))
  chex.assert_trees_all_close(a, src.draw(src.arrays, jax.random.key(0), 512), atol=1e-6)
  b = jitted(arrays, jax.random.key(1))
  assert not np.array_equal(a['image'], b['image'])
  # 512 draws from 50 examples include the fixture's 0 and 255 pixels: exact endpoints.
  assert float(a['image'].min()) == -1.0 and float(a['image'].max()) == 1.0


def test_make_image_source_validates_shape():
  with pytest.raises(DataError, match='3-tuple'):
    data.make_image_source(np.zeros((4, 28, 28), np.uint8), None, name='x', source='idx',
                           num_classes=None)
  with pytest.raises(DataError, match='float32'):
    data.make_image_source(np.zeros((4, 2, 2, 1), np.float32), None, name='x', source='idx',
                           num_classes=None)
  src = data.make_image_source(np.zeros((4, 2, 2, 3), np.uint8), None, name='x',
                               source='tfds', num_classes=None)
  np.testing.assert_array_equal(src.arrays['label'], np.zeros(4, np.int32))


def test_bad_config_values():
  with pytest.raises(DataError, match="'auto', 'idx', 'tfds', 'download', 'toy2d'") as e:
    data.load_source({'source': 'hdf5', 'name': 'mnist'})
  assert 'hdf5' in assert_one_line(e)
  with pytest.raises(DataError, match='config.data.name'):
    data.load_source({'source': 'idx', 'name': ''})
  with pytest.raises(DataError, match="source='toy2d'"):
    data.load_source({'source': 'auto', 'name': 'ring'})


# ---------------------------------------------------------------------------------------------
# toy2d.


def test_toy2d_centers():
  ring = data.load_source({'source': 'toy2d', 'name': 'ring'})
  chex.assert_shape(ring.arrays['centers'], (8, 2))
  np.testing.assert_allclose(np.linalg.norm(ring.arrays['centers'], axis=-1), 2.0, rtol=1e-6)
  assert ring.info['std'] == 0.02 and ring.info['shape'] == (2,)
  assert ring.info['num_examples'] is None and ring.info['num_classes'] == 8
  grid = data.load_source({'source': 'toy2d', 'name': 'grid'})
  chex.assert_shape(grid.arrays['centers'], (25, 2))
  assert grid.info['std'] == 0.05
  assert {tuple(c) for c in grid.info['centers'].tolist()} == {
      (x, y) for x in (-4., -2., 0., 2., 4.) for y in (-4., -2., 0., 2., 4.)}
  with pytest.raises(DataError, match="'grid', 'ring'"):
    data.load_source({'source': 'toy2d', 'name': 'spiral'})


@pytest.mark.parametrize('name', ['ring', 'grid'])
def test_toy2d_samples_near_modes(name):
  src = data.load_source({'source': 'toy2d', 'name': name})
  draw = jax.jit(src.draw, static_argnames='batch_size')
  batch = draw(jax.device_put(src.arrays), jax.random.key(0), batch_size=5000)
  chex.assert_trees_all_equal(batch, draw(src.arrays, jax.random.key(0), batch_size=5000))
  chex.assert_shape(batch['image'], (5000, 2))
  assert batch['image'].dtype == jnp.float32 and batch['label'].dtype == jnp.int32
  x, label = np.asarray(batch['image']), np.asarray(batch['label'])
  centers, std = src.info['centers'], src.info['std']
  assert set(np.unique(label)) == set(range(len(centers)))
  for k, center in enumerate(centers):
    points = x[label == k]
    np.testing.assert_allclose(points.mean(0), center, atol=5 * std / np.sqrt(len(points)))
  np.testing.assert_allclose((x - centers[label]).std(), std, rtol=0.05)


# ---------------------------------------------------------------------------------------------
# TFDS (mocked: no TensorFlow, no prepared data needed).


@pytest.mark.parametrize('name,shape', [('mnist', (28, 28, 1)), ('cifar10', (32, 32, 3))])
def test_tfds_mock(name, shape):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  with tfds.testing.mock_data(num_examples=12):
    src = data.load_source({'source': 'tfds', 'name': name})
  assert src.info['shape'] == shape and src.info['source'] == 'tfds'
  assert src.info['num_examples'] == 12 and src.info['num_classes'] == 10
  chex.assert_shape(src.arrays['image'], (12,) + shape)
  assert src.arrays['image'].dtype == np.uint8
  assert src.arrays['label'].min() >= 0 and src.arrays['label'].max() < 10
  batch = jax.jit(src.draw, static_argnames='batch_size')(src.arrays, jax.random.key(0),
                                                          batch_size=4)
  chex.assert_shape(batch['image'], (4,) + shape)


def test_tfds_unknown_name_suggests():
  with pytest.raises(DataError, match='unknown TFDS dataset') as e:
    data.load_source({'source': 'tfds', 'name': 'cifar_10'})
  assert 'cifar10' in assert_one_line(e)


def test_tfds_not_prepared_explains(tmp_path):
  with pytest.raises(DataError, match='not prepared') as e:
    data.load_source({'source': 'tfds', 'name': 'mnist', 'tfds_data_dir': str(tmp_path)})
  message = assert_one_line(e)
  assert 'gan_jax[tfds-prepare]' in message and "source='download'" in message
  assert str(tmp_path) in message


# ---------------------------------------------------------------------------------------------
# Download.


class _QuietHandler(http.server.SimpleHTTPRequestHandler):

  def log_message(self, *args):  # Keep the test output clean.
    pass


@pytest.fixture
def mirrors(tmp_path, monkeypatch):
  """Good/corrupt/truncated fixture mirrors, over http:// (threaded server) and file://."""
  www = tmp_path / 'www'
  good = {}
  rng = np.random.default_rng(5)
  for filename in download.FILES:
    n = 10 if filename.startswith('train') else 4
    array = (rng.integers(0, 256, (n, 4, 4), dtype=np.uint8) if 'images' in filename
             else (np.arange(n) % 3).astype(np.uint8))
    good[filename] = idx_bytes(array)
    for folder, blob in (('good', gzip.compress(good[filename])),
                         ('corrupt', gzip.compress(good[filename][:-1] + b'\x01')),
                         ('truncated', gzip.compress(good[filename])[:20])):
      os.makedirs(www / folder, exist_ok=True)
      (www / folder / filename).write_bytes(blob)
  monkeypatch.setitem(download.SHA256, 'mnist',
                      {f: hashlib.sha256(b).hexdigest() for f, b in good.items()})
  server = http.server.ThreadingHTTPServer(
      ('127.0.0.1', 0), functools.partial(_QuietHandler, directory=str(www)))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  http_root = f'http://127.0.0.1:{server.server_address[1]}/'
  yield {'http': http_root, 'file': (www).as_uri() + '/', 'good': good}
  server.shutdown()
  server.server_close()
  thread.join()


def _assert_downloaded(directory, good):
  assert sorted(os.listdir(directory)) == sorted(download.FILES)  # No .part leftovers.
  for filename, raw in good.items():
    assert gzip.decompress((directory / filename).read_bytes()) == raw


@pytest.mark.parametrize('scheme', ['http', 'file'])
def test_download_good_mirror(tmp_path, mirrors, scheme):
  dest = tmp_path / 'out'
  got = download.download_dataset('mnist', str(dest), [mirrors[scheme] + 'good'],
                                  progress=False)
  assert got == str(dest)
  _assert_downloaded(dest, mirrors['good'])
  # Present and verified: skipped, so even an unreachable mirror is fine now.
  download.download_dataset('mnist', str(dest), ['file:///nonexistent/'], progress=False)


def test_download_falls_through_bad_mirrors(tmp_path, mirrors):
  dest = tmp_path / 'out'
  os.makedirs(dest)
  # A corrupt pre-existing file is re-downloaded, not trusted.
  (dest / download.FILES[0]).write_bytes(b'junk')
  chain = [mirrors['http'] + 'corrupt', mirrors['http'] + 'missing',
           mirrors['file'] + 'truncated', mirrors['http'] + 'good/']
  download.download_dataset('mnist', str(dest), chain, progress=False)
  _assert_downloaded(dest, mirrors['good'])


def test_download_all_mirrors_fail(tmp_path, mirrors):
  dest = tmp_path / 'out'
  chain = [mirrors['http'] + 'corrupt', mirrors['file'] + 'missing']
  with pytest.raises(DataError) as e:
    download.download_dataset('mnist', str(dest), chain, progress=False)
  message = assert_one_line(e)
  assert chain[0] + '/train-images' in message and 'sha256' in message
  assert chain[1] + '/train-images' in message and 'No such file' in message
  assert not dest.exists()  # No empty folder (or half file) left behind.


def test_download_cli(tmp_path, mirrors, capsys):
  dest = tmp_path / 'cli'
  assert download.main(['mnist', '--dir', str(dest), '--mirror', 'file:///nonexistent/']) == 2
  err = capsys.readouterr().err.strip()
  assert '\n' not in err and 'file:///nonexistent/' in err
  assert download.main(['mnist', '--dir', str(dest), '--no-progress', '--mirror',
                        mirrors['http'] + 'good']) == 0
  _assert_downloaded(dest, mirrors['good'])
  assert download.main(['cifar10']) == 2
  assert 'cifar10' in capsys.readouterr().err


def test_download_source_default_dir(tmp_path, mirrors, monkeypatch):
  monkeypatch.setenv(names.DATA_DIR_ENV, str(tmp_path / 'data'))
  src = data.load_source({'source': 'download', 'name': 'mnist',
                          'mirrors': (mirrors['file'] + 'good',)})
  assert src.info['source'] == 'download' and src.info['shape'] == (4, 4, 1)
  assert src.info['num_examples'] == 10
  _assert_downloaded(tmp_path / 'data' / 'mnist', mirrors['good'])
  # What was downloaded is now found locally by source='idx' and 'auto'.
  assert data.load_source({'source': 'auto', 'name': 'mnist'}).info['source'] == 'idx'


# ---------------------------------------------------------------------------------------------
# source='auto'.


def test_auto_nothing_anywhere(tmp_path, monkeypatch):
  empty_data = tmp_path / 'empty_data'
  empty_tfds = tmp_path / 'empty_tfds'
  os.makedirs(empty_data)
  os.makedirs(empty_tfds)
  monkeypatch.setenv(names.DATA_DIR_ENV, str(empty_data))
  with pytest.raises(DataError) as e:
    data.load_source({'source': 'auto', 'name': 'mnist', 'dir': '',
                      'mirrors': ['file:///nonexistent/'], 'tfds_data_dir': str(empty_tfds)})
  message = assert_one_line(e)
  for where in (str(empty_data / 'mnist'), str(empty_tfds), 'file:///nonexistent/',
                'GAN_JAX_DATA_DIR', 'python -m gan_jax.data.download mnist'):
    assert where in message, where


def test_auto_prefers_local_idx(tmp_path, monkeypatch):
  make_idx_dataset(tmp_path / 'mnist', n_train=11)
  monkeypatch.setenv(names.DATA_DIR_ENV, str(tmp_path))
  # A config missing the optional fields still works.
  src = data.load_source({'name': 'mnist'})
  assert src.info['source'] == 'idx' and src.info['num_examples'] == 11
