"""TFDS image datasets, read without TensorFlow.

We use `tfds.data_source(..., download=False)`, the random-access reader over array_record
files. Reading such a prepared dataset decodes examples with numpy/PIL, so it needs no
TensorFlow; `tfds.load` would return a `tf.data.Dataset` and always need it. Preparing
(downloading + converting) a dataset does need TensorFlow (the encoders of e.g.
`tfds.features.Image` call `tf.image`), so we never trigger it and instead say how to do it.

Testing: `tfds.testing.mock_data` patches `DatasetBuilder.as_data_source` with a fake
array_record source, so this module runs under it, without TensorFlow, with the default
`MockPolicy.AUTO`/`USE_CODE` (the installed tfds ships no metadata folder, so AUTO falls back
to USE_CODE; `USE_FILES` would need real `dataset_info.json` files). Its `as_dataset` path,
in contrast, builds a `tf.data.Dataset` and needs TensorFlow. The mock's `__getitems__` is a
plain attribute on a MagicMock (MagicMock only binds real dunder names, and `__getitems__`
is not one), so calling it raises TypeError; we therefore read examples one at a time with
`__getitem__`, which works for both the mock and real array_record sources.
"""

import difflib
import os

import numpy as np
from absl import logging as absl_logging

from gan_jax.errors import DataError

def _prepare_hint(name: str, data_dir: str) -> str:
  dir_flag = f' --data_dir={data_dir}' if data_dir else ''
  hint = ("prepare it with TensorFlow: pip install 'gan_jax[tfds-prepare]' then "
          f'`tfds build {name} --file_format=array_record{dir_flag}`')
  if name.split(':', 1)[0] in ('mnist', 'fashion_mnist'):
    hint += ", or use source='download' (no TensorFlow needed)"
  return hint


def _tfds():
  # Imported lazily: importing tensorflow_datasets costs ~0.5 s, which IDX/toy2d users skip.
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds


def _one_line(text) -> str:
  return ' '.join(str(text).split())


def _check_known(name: str) -> None:
  """Raises DataError with close matches if `name`'s builder is not registered in TFDS."""
  tfds = _tfds()
  # 'cifar10:3.0.2' and 'celeb_a/config' name the builder 'cifar10' / 'celeb_a'.
  base = name.split(':', 1)[0].split('/', 1)[0]
  known = tfds.list_builders(with_community_datasets=False)
  if base not in known:
    close = difflib.get_close_matches(base, known, n=5, cutoff=0.6)
    hint = f'did you mean {close}?' if close else 'see tfds.list_builders() for valid names'
    raise DataError(f'unknown TFDS dataset {name!r}; {hint}')


def _open_error(name: str, split: str, data_dir: str, error: Exception) -> DataError:
  """Explains why `tfds.data_source` failed: not prepared, wrong file format, or bad split."""
  tfds = _tfds()
  try:
    builder = tfds.builder(name, data_dir=data_dir or None)
    prepared = builder.is_prepared()
    where = builder.data_dir
  except Exception:  # pylint: disable=broad-except  # Only refining the message.
    prepared, where, builder = False, data_dir or 'the TFDS default data dir', None
  if not prepared:
    return DataError(f'TFDS dataset {name!r} is not prepared in {where}; '
                     + _prepare_hint(name, data_dir))
  formats = {f.value for f in builder.info.available_file_formats()}
  if not formats & {'array_record', 'parquet'}:
    return DataError(f'TFDS dataset {name!r} in {where} is stored as {sorted(formats)}, which '
                     'has no random access; re-' + _prepare_hint(name, data_dir))
  return DataError(f'TFDS could not open {name!r} split {split!r} in {where} '
                   f'({type(error).__name__}: {_one_line(error)[:300]}); available splits: '
                   f'{sorted(builder.info.splits)}')


def open_data_source(name: str, split: str = 'train', data_dir: str = ''):
  """Opens a prepared TFDS split for random access (`tfds.data_source`), without TensorFlow.

  Args:
    name: TFDS name, optionally with config/version ('cifar10', 'mnist:3.0.1').
    split: TFDS split spec ('train', 'test', 'train[:90%]', ...).
    data_dir: TFDS data dir; '' means the TFDS default (`$TFDS_DATA_DIR` or
      `~/tensorflow_datasets`).

  Returns:
    The data source: `len(source)`, `source[i]` -> a dict of numpy values, and
    `source.dataset_info`. Read it with `__getitem__` one example at a time (module docstring).

  Raises:
    DataError: unknown name (with suggestions), dataset not prepared (with how to prepare
      it), no random-access file format, or a bad split (listing the available ones).
  """
  tfds = _tfds()
  _check_known(name)
  old_verbosity = absl_logging.get_verbosity()
  # TFDS logs a warning for each half-prepared variant folder it looks at; our DataError below
  # names the problem in one line instead.
  absl_logging.set_verbosity(absl_logging.ERROR)
  try:
    return tfds.data_source(name, split=split, data_dir=data_dir or None, download=False,
                            try_gcs=False)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise DataError(f'unknown TFDS dataset {name!r}; see tfds.list_builders()') from e
  except (NotImplementedError, ValueError, KeyError, AssertionError, OSError) as e:
    raise _open_error(name, split, data_dir, e) from e
  finally:
    absl_logging.set_verbosity(old_verbosity)


def image_features(source, name: str, variable_size_ok: bool = False) -> dict:
  """Checks that an opened TFDS source holds uint8 images and describes its features.

  Args:
    source: from `open_data_source`.
    name: the TFDS name, for messages.
    variable_size_ok: accept images whose height/width is None (the caller resizes them).

  Returns:
    `{'shape': (H, W, C) with None for a variable size, 'num_classes': int or None,
    'class_names': list of str or None}`; a 'label' that is not a ClassLabel (e.g. a float
    regression target) is not a class, so it gives None.

  Raises:
    DataError: no 'image' feature, non-uint8 or (unless allowed) variable-size images.
  """
  features = source.dataset_info.features
  if 'image' not in features:
    raise DataError(f'TFDS dataset {name!r} has no "image" feature (features: '
                    f'{sorted(features.keys())}); only image datasets are supported')
  image_feature = features['image']
  shape = tuple(image_feature.shape)
  if len(shape) != 3 or shape[2] is None or (None in shape and not variable_size_ok):
    raise DataError(f'TFDS dataset {name!r} has images of shape {shape}; only fixed-size '
                    '(H, W, C) images are supported, pick a resized config/variant')
  if np.dtype(image_feature.np_dtype) != np.uint8:
    raise DataError(f'TFDS dataset {name!r} has {np.dtype(image_feature.np_dtype)} images; '
                    'only uint8 images are supported')
  label_feature = features['label'] if 'label' in features else None
  num_classes = getattr(label_feature, 'num_classes', None)
  return {
      'shape': shape,
      'num_classes': int(num_classes) if num_classes is not None else None,
      'class_names': list(label_feature.names) if num_classes is not None else None,
  }


def load_tfds_arrays(name: str, split: str = 'train', data_dir: str = '') -> dict:
  """Loads a whole split of a prepared TFDS image dataset into memory.

  Args:
    name: TFDS name, optionally with config/version ('cifar10', 'mnist:3.0.1').
    split: TFDS split spec ('train', 'test', 'train[:90%]', ...).
    data_dir: TFDS data dir; '' means the TFDS default (`$TFDS_DATA_DIR` or
      `~/tensorflow_datasets`).

  Returns:
    `{'image': uint8 [N, H, W, C], 'label': int32 [N] or None, 'num_classes': int or None,
    'data_dir': str}`.

  Raises:
    DataError: unknown name (with suggestions), dataset not prepared (with how to prepare
      it), no 'image' feature, variable-size or non-uint8 images.
  """
  source = open_data_source(name, split, data_dir)
  described = image_features(source, name)
  shape, num_classes = described['shape'], described['num_classes']
  has_label = num_classes is not None

  count = len(source)
  if count == 0:
    raise DataError(f'TFDS dataset {name!r} split {split!r} is empty; choose another split')
  images = np.empty((count,) + shape, np.uint8)
  labels = np.empty((count,), np.int32) if has_label else None
  for i in range(count):
    example = source[i]
    images[i] = example['image']
    if has_label:
      labels[i] = example['label']
  return {
      'image': images,
      'label': labels,
      'num_classes': num_classes,
      'data_dir': os.fspath(data_dir) if data_dir else '',
  }
