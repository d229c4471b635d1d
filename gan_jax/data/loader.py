"""`load_source`: turns `config.data` into a `Source` by dispatching to a backend."""

import os

from gan_jax.data import idx as idx_lib
from gan_jax.data import names
from gan_jax.data import tfds_source
from gan_jax.data import toy2d
from gan_jax.data.core import Source, make_image_source
from gan_jax.errors import DataError

SOURCES = ('auto', 'idx', 'tfds', 'download', 'toy2d')

# Known class counts, so that a split missing some class (e.g. a tiny subset) still reports
# the dataset's true number of classes.
_NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10}


def _idx_source(name: str, directory: str, split: str, source: str) -> Source:
  arrays = idx_lib.load_idx_dataset(directory, split)
  num_classes = _NUM_CLASSES.get(name, int(arrays['label'].max()) + 1)
  return make_image_source(arrays['image'], arrays['label'], name=name, source=source,
                           num_classes=num_classes, split=split, dir=directory)


def _tfds_source(name: str, split: str, data_dir: str) -> Source:
  loaded = tfds_source.load_tfds_arrays(name, split, data_dir)
  return make_image_source(loaded['image'], loaded['label'], name=name, source='tfds',
                           num_classes=loaded['num_classes'], split=split,
                           tfds_data_dir=loaded['data_dir'])


def _download_source(name, directory, mirrors, split) -> Source:
  # Imported here, not at the top, so that `python -m gan_jax.data.download` does not find
  # its own module already imported by the package (runpy warns about that double import).
  from gan_jax.data import download as download_lib  # pylint: disable=g-import-not-at-top
  target = download_lib.download_dataset(name, directory, mirrors)
  return _idx_source(name, target, split, 'download')


def _auto_source(name, directory, mirrors, tfds_data_dir, split) -> Source:
  """Tries local IDX, then a prepared TFDS dataset, then downloading (MNIST family only)."""
  reasons = []
  if name in names.IDX_DATASETS or directory:
    try:
      return _idx_source(name, idx_lib.resolve_idx_dir(name, directory, split), split, 'idx')
    except DataError as e:
      reasons.append(f'IDX: {e}')
  try:
    return _tfds_source(name, split, tfds_data_dir)
  except DataError as e:
    reasons.append(f'TFDS: {e}')
  if name in names.IDX_DATASETS:
    try:
      return _download_source(name, directory, mirrors, split)
    except DataError as e:
      reasons.append(f'download: {e}')
  else:
    reasons.append(f'download: only {list(names.IDX_DATASETS)} can be downloaded')
  if name in names.IDX_DATASETS:
    fix = (f'set config.data.dir or ${names.DATA_DIR_ENV} to a folder with the IDX files, or '
           f'run `python -m gan_jax.data.download {name}`')
  else:
    fix = 'prepare the TFDS dataset or set config.data.tfds_data_dir to where it is prepared'
  raise DataError(f'source="auto" found no data for {name!r}: ' + ' | '.join(reasons) +
                  f' | fix: {fix}')


def load_source(data_config, split: str = 'train') -> Source:
  """Loads the dataset described by `config.data`.

  Args:
    data_config: ConfigDict (or dict) with `source` ('auto' | 'idx' | 'tfds' | 'download' |
      'toy2d'), `name`, and optional `dir` (str, '' = unset), `mirrors` (sequence of base
      URLs, empty = defaults) and `tfds_data_dir` (str, '' = TFDS default).
    split: 'train' or 'test' (TFDS also takes slicing specs like 'train[:90%]'); ignored by
      toy2d.

  Returns:
    A `Source`; see `gan_jax.data.core.Source` for shapes.

  Raises:
    DataError: for any bad config value or missing/corrupt data, with a one-line message.
  """
  source = data_config.get('source', 'auto') or 'auto'
  if source not in SOURCES:
    raise DataError(f'config.data.source={source!r} is not valid; use one of {list(SOURCES)}')
  name = names.canonical_name(data_config.get('name', ''))
  directory = data_config.get('dir', '') or ''
  if directory:
    directory = os.path.expanduser(os.fspath(directory))
  mirrors = data_config.get('mirrors', ()) or ()
  if isinstance(mirrors, str):
    mirrors = (mirrors,)
  mirrors = tuple(mirrors)
  tfds_data_dir = data_config.get('tfds_data_dir', '') or ''

  if source == 'toy2d':
    return toy2d.load_toy2d(name)
  if name in toy2d.MIXTURES:
    raise DataError(f'config.data.name={name!r} is a 2-D toy dataset; set '
                    "config.data.source='toy2d'")
  if source == 'idx':
    return _idx_source(name, idx_lib.resolve_idx_dir(name, directory, split), split, 'idx')
  if source == 'tfds':
    return _tfds_source(name, split, tfds_data_dir)
  if source == 'download':
    return _download_source(name, directory, mirrors, split)
  return _auto_source(name, directory, mirrors, tfds_data_dir, split)
