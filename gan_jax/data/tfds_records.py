"""`TfdsRecords`: a prepared TFDS split as a random-access record source, without TensorFlow.

    records = TfdsRecords('cifar10', 'train', resolution=64)
    records[i]        # {'image': uint8 [64, 64, 3], 'label': np.int32}

It wraps `tfds.data_source` (array_record files, decoded with numpy/PIL), opened and checked
by the helpers of `tfds_source`, whose docstring explains why examples are read one at a time
with `__getitem__` and how this runs under `tfds.testing.mock_data`.

Pickling keeps only the constructor arguments and `info`: the data source holds open file
readers, so each process (e.g. each grain worker) re-opens it lazily on its first read.
"""

import numpy as np

from gan_jax.data import imaging
from gan_jax.data import tfds_source
from gan_jax.errors import DataError


class TfdsRecords:
  """One TFDS split, one decoded example per `__getitem__`.

  Attributes:
    info: `{'name', 'shape': (R, R, C) or the dataset's (H, W, C), 'num_classes': int or None,
      'class_names': list of str or None, 'num_examples': N, 'source': 'tfds', 'split',
      'tfds_data_dir'}`.
  """

  def __init__(self, name: str, split: str = 'train', data_dir: str = '', resolution: int = 0,
               channels: int = 0, crop: str = 'center', crop_size: int = 0):
    """Opens the split once to check its features and fill `info`.

    Args:
      name: TFDS name, optionally with config/version ('cifar10', 'mnist:3.0.1').
      split: TFDS split spec ('train', 'test', 'train[:90%]', ...).
      data_dir: TFDS data dir; '' = the TFDS default.
      resolution: output side R, or 0 to keep the dataset's size (which must then be fixed).
      channels: 1, 3, or 0 to keep the dataset's.
      crop, crop_size: how non-square images are made square; see `imaging.to_square`.

    Raises:
      DataError: bad options, unknown/unprepared dataset, bad split, no uint8 'image'
        feature, variable-size images with resolution=0, or an empty split.
    """
    imaging.check_options(resolution, channels, crop, crop_size, allow_zero=True)
    self._args = (name, split, data_dir)
    self._options = (int(resolution), int(channels), crop, int(crop_size))
    source = tfds_source.open_data_source(name, split, data_dir)
    described = tfds_source.image_features(source, name, variable_size_ok=bool(resolution))
    if len(source) == 0:
      raise DataError(f'TFDS dataset {name!r} split {split!r} is empty; choose another split')
    height, width, depth = described['shape']
    if not channels and depth not in (1, 3):
      raise DataError(f'TFDS dataset {name!r} has {depth}-channel images; set channels to 1 or 3')
    self._source = source
    self._has_label = described['num_classes'] is not None
    self.info = {
        'name': name,
        'shape': (resolution or height, resolution or width, channels or depth),
        'num_classes': described['num_classes'],
        'class_names': described['class_names'],
        'num_examples': len(source),
        'source': 'tfds',
        'split': split,
        'tfds_data_dir': data_dir,
    }

  def __getstate__(self) -> dict:
    state = dict(self.__dict__)
    state['_source'] = None  # Open file readers do not pickle; re-opened in the new process.
    return state

  def __len__(self) -> int:
    return self.info['num_examples']

  def __getitem__(self, index: int) -> dict:
    """Record `index`: `{'image': uint8 info['shape'], 'label': np.int32 (0 if unlabelled)}`."""
    if self._source is None:
      self._source = tfds_source.open_data_source(*self._args)
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f'index {index} out of range for {len(self)} records')
    example = self._source[index % len(self)]
    image = imaging.convert_array(np.asarray(example['image'], np.uint8), *self._options)
    label = example['label'] if self._has_label else 0
    return {'image': image, 'label': np.int32(label)}

  def __repr__(self) -> str:
    name, split, _ = self._args
    return f'TfdsRecords({name!r}, {split!r}, n={len(self)}, shape={self.info["shape"]})'
