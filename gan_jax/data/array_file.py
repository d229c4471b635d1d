"""`ArrayRecords`: images stored in a `.npy` or `.npz` file, as a random-access record source.

    records = ArrayRecords('faces.npy')            # uint8 [N, H, W, C] or [N, H, W]
    records = ArrayRecords('cifar.npz', resolution=64, channels=1)
    records[i]                                     # {'image': uint8 [R, R, C], 'label': np.int32}

Big files stream instead of filling memory: a `.npy` is memory-mapped (`np.load(mmap_mode='r')`)
and so is each array of an uncompressed `.npz` (`np.savez`), whose members are stored verbatim
in the zip. A compressed `.npz` (`np.savez_compressed`) has to be decompressed whole, once per
process. `info['memory_mapped']` says which happened.

Float images are accepted in [0, 1] or [-1, 1] (the range is detected from the min/max over the
whole array, reported in `info['value_range']`) and mapped to uint8 as round(255 x) or
round(127.5 (x + 1)).

Pickling keeps only the path and options; the arrays are re-opened lazily in each process, so
grain can send the source to its workers without copying the data.
"""

import os
import zipfile

import numpy as np

from gan_jax.data import imaging
from gan_jax.errors import DataError

IMAGE_KEYS = ('image', 'images', 'x')
LABEL_KEYS = ('label', 'labels', 'y')
_VALID_IMAGES = ('uint8 [N, H, W, C] or [N, H, W] with C in (1, 3), or float in [0, 1] or '
                 '[-1, 1]')


def _npz_member_memmap(path: str, member: str):
  """Memory-maps one uncompressed `.npz` member, or returns None if it cannot be mapped."""
  with zipfile.ZipFile(path) as archive:
    info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
      return None
  with open(path, 'rb') as f:
    # The member's bytes start after its local header: 30 fixed bytes, the file name and an
    # extra field whose lengths are stored at bytes 26 and 28.
    f.seek(info.header_offset)
    header = f.read(30)
    if header[:4] != b'PK\x03\x04':
      return None
    start = info.header_offset + 30 + int.from_bytes(header[26:28], 'little') + int.from_bytes(
        header[28:30], 'little')
    f.seek(start)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
      shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version == (2, 0):
      shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
      return None
    offset = f.tell()
  if dtype.hasobject:
    return None
  return np.memmap(path, dtype=dtype, mode='r', offset=offset, shape=shape,
                   order='F' if fortran else 'C')


def _open(path: str) -> tuple:
  """Returns `(images, labels or None, memory_mapped)` without validating them."""
  try:
    if path.endswith('.npy'):
      return np.load(path, mmap_mode='r', allow_pickle=False), None, True
    with np.load(path, allow_pickle=False) as npz:
      keys = list(npz.keys())
      image_key = next((k for k in IMAGE_KEYS if k in keys), None)
      if image_key is None:
        raise DataError(f'{path} has arrays {keys} but none named {list(IMAGE_KEYS)}; save the '
                        "images under one of those keys (e.g. np.savez(path, image=x, label=y))")
      label_key = next((k for k in LABEL_KEYS if k in keys), None)
      arrays = []
      for key in (image_key, label_key):
        if key is None:
          arrays.append(None)
          continue
        mapped = _npz_member_memmap(path, key + '.npy')
        arrays.append(mapped if mapped is not None else npz[key])
      return arrays[0], arrays[1], isinstance(arrays[0], np.memmap)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise DataError(f'cannot read array file {path!r} ({type(e).__name__}: '
                    f'{" ".join(str(e).split())[:200]}); expected a .npy or .npz saved by '
                    'numpy, without pickled objects') from e


def _value_range(images: np.ndarray, path: str) -> str:
  """'uint8', '[0, 1]' or '[-1, 1]'; DataError for any other dtype, shape or range."""
  if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] not in (1, 3)):
    raise DataError(f'{path} holds images of shape {images.shape} ({images.dtype}); valid: '
                    + _VALID_IMAGES)
  if images.shape[0] == 0:
    raise DataError(f'{path} holds no images (shape {images.shape}); valid: ' + _VALID_IMAGES)
  if images.dtype == np.uint8:
    return 'uint8'
  if not np.issubdtype(images.dtype, np.floating):
    raise DataError(f'{path} holds {images.dtype} images of shape {images.shape}; valid: '
                    + _VALID_IMAGES)
  low, high = float(np.min(images)), float(np.max(images))
  if 0.0 <= low and high <= 1.0:
    return '[0, 1]'
  if -1.0 <= low and high <= 1.0:
    return '[-1, 1]'
  raise DataError(f'{path} holds {images.dtype} images with values in [{low:g}, {high:g}]; '
                  'float images must lie in [0, 1] or [-1, 1] (or save them as uint8)')


def _check_labels(labels, count: int, path: str):
  """Labels as int32 [N] and the number of classes (max + 1)."""
  labels = np.asarray(labels)
  if labels.ndim == 2 and labels.shape[1] == 1:
    labels = labels[:, 0]
  if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
    raise DataError(f'{path} has labels of shape {labels.shape} ({labels.dtype}) for {count} '
                    f'images; valid: integer [{count}]')
  if count and labels.min() < 0:
    raise DataError(f'{path} has a negative label ({labels.min()}); valid: ints >= 0')
  return labels.astype(np.int32), int(labels.max()) + 1


class ArrayRecords:
  """Images (and optional labels) from a `.npy` / `.npz` file, one record per call.

  Attributes:
    info: `{'name': file name without extension, 'shape': (R, R, C) or the array's (H, W, C),
      'num_classes': max label + 1 or None, 'class_names': None, 'num_examples': N,
      'source': 'array_file', 'path', 'value_range': 'uint8' | '[0, 1]' | '[-1, 1]',
      'memory_mapped': bool}`.
  """

  def __init__(self, path: str, resolution: int = 0, channels: int = 0, crop: str = 'center',
               crop_size: int = 0):
    """Opens the file once to validate it and fill `info`.

    Args:
      path: a `.npy` file of images, or a `.npz` with images under one of `IMAGE_KEYS` and
        optional labels under one of `LABEL_KEYS`.
      resolution: output side R, or 0 to keep the array's H x W.
      channels: 1, 3, or 0 to keep the array's C.
      crop, crop_size: how non-square images are made square; see `imaging.to_square`.

    Raises:
      DataError: a missing file, a suffix other than .npy/.npz, bad options, or arrays
        of the wrong dtype/shape/range (naming what is valid).
    """
    imaging.check_options(resolution, channels, crop, crop_size, allow_zero=True)
    path = os.path.expanduser(os.fspath(path))
    if not path.endswith(('.npy', '.npz')):
      raise DataError(f'array file {path!r} must end in .npy or .npz')
    if not os.path.isfile(path):
      raise DataError(f'array file {path!r} does not exist; expected a .npy or .npz of images')
    self._path = path
    self._options = (int(resolution), int(channels), crop, int(crop_size))
    images, labels, memory_mapped = _open(path)
    self._value_range = _value_range(images, path)
    count = images.shape[0]
    num_classes = None
    if labels is not None:
      labels, num_classes = _check_labels(labels, count, path)
    self._labels = labels
    self._images = images
    height, width = images.shape[1:3]
    depth = images.shape[3] if images.ndim == 4 else 1
    side = int(resolution)
    self.info = {
        'name': os.path.splitext(os.path.basename(path))[0],
        'shape': (side or int(height), side or int(width), int(channels) or int(depth)),
        'num_classes': num_classes,
        'class_names': None,
        'num_examples': int(count),
        'source': 'array_file',
        'path': path,
        'value_range': self._value_range,
        'memory_mapped': memory_mapped,
    }

  def __getstate__(self) -> dict:
    # Only the path, options and small metadata: the images are re-opened in the worker.
    state = dict(self.__dict__)
    state['_images'] = None
    return state

  def __len__(self) -> int:
    return self.info['num_examples']

  def _to_uint8(self, image: np.ndarray) -> np.ndarray:
    if self._value_range == '[0, 1]':
      image = np.rint(np.asarray(image, np.float32) * 255)
    elif self._value_range == '[-1, 1]':
      image = np.rint((np.asarray(image, np.float32) + 1) * 127.5)
    else:
      return np.array(image)  # A copy: never hand out a view of the memory map.
    return np.clip(image, 0, 255).astype(np.uint8)

  def __getitem__(self, index: int) -> dict:
    """Record `index`: `{'image': uint8 info['shape'], 'label': np.int32 (0 if unlabelled)}`."""
    if self._images is None:
      self._images = _open(self._path)[0]
    image = self._to_uint8(self._images[index])
    image = imaging.convert_array(image, *self._options)
    label = self._labels[index] if self._labels is not None else 0
    return {'image': image, 'label': np.int32(label)}

  def __repr__(self) -> str:
    return f'ArrayRecords({self._path!r}, n={len(self)}, shape={self.info["shape"]})'
