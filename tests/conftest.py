"""Test setup: 8 fake CPU devices (set before jax is imported) and shared-data discovery."""

import os
import sys

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           ' --xla_force_host_platform_device_count=8').strip()
os.environ.setdefault('JAX_PLATFORMS', 'cpu')

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)


def shared_datasets_dir():
  """The folder holding mnist/ and fashion-mnist/: $GAN_JAX_DATA_DIR, else ../shared/datasets."""
  env = os.environ.get('GAN_JAX_DATA_DIR')
  if env:
    return env
  return os.path.join(os.path.dirname(REPO), 'shared', 'datasets')


def has_real_mnist():
  return os.path.exists(os.path.join(shared_datasets_dir(), 'mnist', 'train-images-idx3-ubyte.gz'))


needs_mnist = pytest.mark.skipif(not has_real_mnist(),
                                 reason='real MNIST not found (set GAN_JAX_DATA_DIR)')


def subprocess_env(**extra):
  """Environment for child processes: a plain single-device CPU run, like a user's."""
  env = dict(os.environ)
  env.pop('XLA_FLAGS', None)
  env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  env.update(extra)
  return env


def write_idx_fixture(directory, n_train=256, n_test=64, seed=0):
  """Writes gzip IDX files of random 28x28 'digits' (a bright blob whose place encodes the label)
  so tests that need image data run on machines without the real MNIST."""
  import gzip
  import struct

  import numpy as np
  rng = np.random.RandomState(seed)
  os.makedirs(directory, exist_ok=True)
  for split, n in (('train', n_train), ('t10k', n_test)):
    labels = rng.randint(0, 10, size=n).astype(np.uint8)
    images = (rng.rand(n, 28, 28) * 40).astype(np.uint8)
    for i, y in enumerate(labels):
      r, c = 4 + 2 * (y // 5) * 4, 4 + 4 * (y % 5)
      images[i, r:r + 6, c:c + 6] = 255
    with gzip.open(os.path.join(directory, f'{split}-images-idx3-ubyte.gz'), 'wb') as f:
      f.write(struct.pack('>HBB', 0, 8, 3) + struct.pack('>III', n, 28, 28) + images.tobytes())
    with gzip.open(os.path.join(directory, f'{split}-labels-idx1-ubyte.gz'), 'wb') as f:
      f.write(struct.pack('>HBB', 0, 8, 1) + struct.pack('>I', n) + labels.tobytes())
  return directory


def pytest_sessionfinish(session, exitstatus):
  """With GAN_JAX_FAIL_ON_SKIP=1 (set by .ci/run) a skipped test fails the run: CI has the data,
  so a skip there means a test silently stopped testing."""
  if os.environ.get('GAN_JAX_FAIL_ON_SKIP') != '1':
    return
  reporter = session.config.pluginmanager.get_plugin('terminalreporter')
  skipped = reporter.stats.get('skipped', []) if reporter else []
  if skipped and exitstatus == 0:
    reporter.write_line(f'GAN_JAX_FAIL_ON_SKIP=1: {len(skipped)} test(s) skipped; failing the run',
                        red=True)
    session.exitstatus = 1
