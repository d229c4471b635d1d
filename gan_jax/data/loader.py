"""`load_source`: turns `config.data` into a `Source` by dispatching to a backend."""

import os

from gan_jax.data import idx as idx_lib
from gan_jax.data import names
from gan_jax.data import tfds_source
from gan_jax.data import toy2d
from gan_jax.data.core import Source, make_image_source
from gan_jax.errors import DataError

SOURCES = ('auto', 'idx', 'tfds', 'download', 'toy2d', 'folder', 'npz')

# Sources read one example at a time (``load_records``), which the streaming pipeline can read.
RECORD_SOURCES = ('folder', 'npz', 'tfds')

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


def uses_records(data_config) -> bool:
  """Whether ``config.data`` is read through ``load_records``: image folders and array files
  always; TFDS when the images are resized or streamed (``gan_jax.run`` also opens a TFDS
  dataset's records when ``pipeline='auto'``, to decide by its size)."""
  source = data_config.get('source', 'auto') or 'auto'
  if source in ('folder', 'npz'):
    return True
  return source == 'tfds' and (data_config.get('pipeline', 'auto') == 'stream' or
                               bool(data_config.get('resolution', 0) or
                                    data_config.get('channels', 0)))


def load_records(data_config, split: str = 'train'):
  """A random-access record source (``len``, ``[i]`` -> ``{'image': uint8 [R, R, C], 'label'}``,
  ``info``) for source 'folder', 'npz' or 'tfds': what ``gan_jax.data.stream`` reads."""
  # Imported here: PIL/TFDS cost the IDX and toy2d users nothing.
  from gan_jax.data import array_file, folder, tfds_records  # pylint: disable=g-import-not-at-top
  source = data_config.get('source', 'auto') or 'auto'
  res, ch = data_config.get('resolution', 0), data_config.get('channels', 0)
  if source == 'folder':
    if not data_config.get('dir'):
      raise DataError("config.data.source='folder' needs config.data.dir, the folder of images "
                      '(class sub-folders optional)')
    if not res:
      raise DataError("config.data.source='folder' needs config.data.resolution, the square size "
                      'the images are cropped and resized to, e.g. 64')
    directory = os.path.expanduser(os.fspath(data_config.get('dir', '') or ''))
    return folder.FolderRecords(directory, res, channels=ch or 3,
                                crop=data_config.get('crop', 'center'),
                                crop_size=data_config.get('crop_size', 0),
                                labels=data_config.get('labels', 'auto'))
  if source == 'npz':
    if not data_config.get('path'):
      raise DataError("config.data.source='npz' needs config.data.path, a .npz or .npy file of "
                      'images')
    return array_file.ArrayRecords(os.path.expanduser(os.fspath(data_config.get('path', ''))),
                                   resolution=res, channels=ch)
  if source == 'tfds':
    return tfds_records.TfdsRecords(names.canonical_name(data_config.get('name', '')), split,
                                    data_config.get('tfds_data_dir', '') or '',
                                    resolution=res, channels=ch)
  raise DataError(f'config.data.source={source!r} is not read record by record; use one of '
                  f'{list(RECORD_SOURCES)}')


def records_source(records, skip_bad_files: bool = False, flip: bool = False) -> Source:
  """Every record of ``records`` read into memory: the device-resident ``Source`` of a folder,
  an array file or a resized TFDS dataset."""
  from gan_jax.data import stream  # pylint: disable=g-import-not-at-top
  info = dict(records.info)
  arrays = stream.read_all(records, skip_bad_files, desc=f'reading {info.get("name", "images")}')
  extra = {k: v for k, v in info.items()
           if k not in ('name', 'shape', 'num_classes', 'num_examples', 'source')}
  return make_image_source(arrays['image'], arrays['label'], name=info.get('name', 'images'),
                           source=info.get('source', 'records'),
                           num_classes=info.get('num_classes'), flip=flip, **extra)


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
  if source in ('folder', 'npz'):
    return records_source(load_records(data_config, split),
                          data_config.get('skip_bad_files', False),
                          data_config.get('flip', False))
  name = names.canonical_name(data_config.get('name', ''))
  directory = data_config.get('dir', '') or ''
  if directory:
    directory = os.path.expanduser(os.fspath(directory))
  mirrors = data_config.get('mirrors', ()) or ()
  if isinstance(mirrors, str):
    mirrors = (mirrors,)
  mirrors = tuple(mirrors)
  tfds_data_dir = data_config.get('tfds_data_dir', '') or ''

  if uses_records(data_config):
    return records_source(load_records(data_config, split),
                          data_config.get('skip_bad_files', False),
                          data_config.get('flip', False))
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
