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
