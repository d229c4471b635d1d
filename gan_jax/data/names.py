"""Dataset name normalisation and the default data directories.

Kept apart from the backends so that `idx`, `download` and the loader agree on spellings and
on where downloaded files go (the IDX lookup must find what the downloader wrote).
"""

import os

from gan_jax.errors import DataError

# Datasets distributed as the four MNIST-style gzip IDX files (and hence downloadable).
IDX_DATASETS = ('mnist', 'fashion_mnist')

# Directory spellings used in the wild for each canonical name; Debian's package and the
# upstream repository both say 'fashion-mnist', TFDS says 'fashion_mnist'.
DIR_SPELLINGS = {
    'mnist': ('mnist',),
    'fashion_mnist': ('fashion_mnist', 'fashion-mnist'),
}

# Environment variable naming a folder that holds one sub-folder per dataset.
DATA_DIR_ENV = 'GAN_JAX_DATA_DIR'

# System-wide dataset folders (Debian's dataset-* packages install under here). A tuple so
# tests can monkeypatch it away.
SYSTEM_DATA_DIRS = ('/usr/share/datasets',)


def canonical_name(name) -> str:
  """Returns the canonical dataset name ('fashion-mnist' -> 'fashion_mnist').

  Args:
    name: the configured dataset name.

  Raises:
    DataError: if `name` is empty or not a string.
  """
  if not isinstance(name, str) or not name.strip():
    raise DataError(f'config.data.name={name!r} is not a dataset name; set it to e.g. '
                    "'mnist', 'fashion_mnist', 'cifar10', 'ring' or 'grid'")
  name = name.strip()
  if name.lower() in ('fashion-mnist', 'fashion_mnist', 'fashionmnist'):
    return 'fashion_mnist'
  if name.lower() == 'mnist':
    return 'mnist'
  return name


def cache_root() -> str:
  """Returns the per-user download cache root (`~/.cache/gan_jax/data`)."""
  return os.path.join(os.path.expanduser('~'), '.cache', 'gan_jax', 'data')


def default_download_dir(name: str) -> str:
  """Returns where downloads of `name` go: `$GAN_JAX_DATA_DIR/<name>` or the user cache."""
  root = os.environ.get(DATA_DIR_ENV) or cache_root()
  return os.path.join(root, canonical_name(name))


def candidate_dirs(name: str) -> list:
  """Lists the directories searched for a dataset's IDX files when `config.data.dir` is unset.

  Order: `$GAN_JAX_DATA_DIR/<spelling>`, `/usr/share/datasets/<spelling>`, then the download
  cache, so that `python -m gan_jax.data.download mnist` (which writes to the cache when the
  env var is unset) is enough to make `source='idx'` work.

  Args:
    name: canonical dataset name.

  Returns:
    Paths (not necessarily existing), without duplicates.
  """
  spellings = DIR_SPELLINGS.get(name, (name,))
  roots = []
  if os.environ.get(DATA_DIR_ENV):
    roots.append(os.environ[DATA_DIR_ENV])
  roots.extend(SYSTEM_DATA_DIRS)
  roots.append(cache_root())
  out = []
  for root in roots:
    for spelling in spellings:
      path = os.path.join(root, spelling)
      if path not in out:
        out.append(path)
  return out
