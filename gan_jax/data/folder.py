"""`FolderRecords`: a folder of image files as a random-access record source.

    records = FolderRecords('~/data/flowers', resolution=64)   # class sub-folders -> labels
    len(records)                      # number of image files found
    records[i]                        # {'image': uint8 [64, 64, 3], 'label': np.int32}

It follows grain's `RandomAccessDataSource` protocol (`__len__`, `__getitem__`), decoding ONE
file per call, so a streaming pipeline can shuffle indices globally and read in worker
processes. The file list is built once, sorted, so index i names the same file on every host
and in every run. The object holds only plain attributes (no open files), so it pickles
cheaply to grain workers.

A file that cannot be decoded raises `BadImageError`: by default a bad file stops training,
since silently skipping it would change which example an index names. Truncated files fail
because PIL's `ImageFile.LOAD_TRUNCATED_IMAGES` is left False (never set it globally: PIL would
then pad truncated images with grey and this check would pass them).
"""

import os

import numpy as np
from PIL import Image, ImageOps

from gan_jax.data import imaging
from gan_jax.errors import DataError

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')
LABEL_MODES = ('auto', 'none', 'folders')

# What PIL raises for undecodable data: UnidentifiedImageError and "image file is truncated"
# are OSErrors; some plugins raise SyntaxError/ValueError/EOFError on malformed headers.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


class BadImageError(DataError):
  """An image file could not be decoded. `.path` is the file, `.reason` why.

  Picklable (it crosses process boundaries in grain workers): `__reduce__` rebuilds it from
  `(path, reason)`.
  """

  def __init__(self, path: str, reason: str):
    self.path = os.fspath(path)
    self.reason = ' '.join(str(reason).split())
    super().__init__(f'cannot read image {self.path!r}: {self.reason}; set '
                     'config.data.skip_bad_files=True to skip such files')

  def __reduce__(self):
    return (type(self), (self.path, self.reason))


def _is_hidden(name: str) -> bool:
  return name.startswith('.')


def find_images(root: str) -> list:
  """Image files under `root`, recursively, as sorted relative paths.

  Hidden files and folders (names starting with '.') are skipped; extensions are matched
  case-insensitively against `IMAGE_EXTENSIONS`. Symlinked folders are followed once each.
  Sorting is by path components, so the order does not depend on the OS or the file system.
  """
  found, seen = [], set()
  for directory, subdirs, files in os.walk(root, followlinks=True):
    real = os.path.realpath(directory)
    if real in seen:  # A symlink loop, or the same folder reached twice.
      subdirs[:] = []
      continue
    seen.add(real)
    subdirs[:] = sorted(d for d in subdirs if not _is_hidden(d))
    rel_dir = os.path.relpath(directory, root)
    for name in files:
      if not _is_hidden(name) and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
        found.append(os.path.normpath(os.path.join(rel_dir, name)))
  return sorted(found, key=lambda rel: rel.split(os.sep))


def folder_labels(files: list, labels: str, root: str):
  """Class ids from first-level sub-folders.

  Args:
    files: relative paths from `find_images`.
    labels: 'auto' = use sub-folders when every image is in one and there are >= 2 of them;
      'folders' = require every image to be in a sub-folder; 'none' = unlabelled.
    root: the folder, for messages.

  Returns:
    `(label int32 [N], class_names list or None)`; unlabelled gives zeros and None.

  Raises:
    DataError: `labels` not in `LABEL_MODES`, or 'folders' with an image at the top level.
  """
  if labels not in LABEL_MODES:
    raise DataError(f'labels={labels!r} is not valid; use one of {list(LABEL_MODES)}')
  unlabelled = (np.zeros((len(files),), np.int32), None)
  if labels == 'none':
    return unlabelled
  parts = [rel.split(os.sep) for rel in files]
  top_level = [rel for rel, p in zip(files, parts) if len(p) < 2]
  if labels == 'folders' and top_level:
    raise DataError(f"labels='folders' needs every image in a class sub-folder of {root}, but "
                    f'{len(top_level)} are at the top level (e.g. {top_level[0]!r}); move them '
                    "or use labels='none'")
  class_names = sorted({p[0] for p in parts if len(p) >= 2})
  if labels == 'auto' and (top_level or len(class_names) < 2):
    return unlabelled
  ids = {name: i for i, name in enumerate(class_names)}
  return np.array([ids[p[0]] for p in parts], np.int32), class_names


class FolderRecords:
  """Image files under a folder, decoded one at a time to uint8 [R, R, C].

  Attributes:
    info: `{'name': basename of the folder, 'shape': (R, R, C), 'num_classes': int or None,
      'class_names': list of str or None, 'num_examples': N, 'source': 'folder',
      'dir': the folder}`.
  """

  def __init__(self, root: str, resolution: int, channels: int = 3, crop: str = 'center',
               crop_size: int = 0, labels: str = 'auto'):
    """Lists the images (once) and checks the options.

    Args:
      root: folder to search recursively for `IMAGE_EXTENSIONS` files.
      resolution: output side R.
      channels: 1 (luma) or 3 (RGB).
      crop, crop_size: see `imaging.to_square` ('center' | 'none'; 0 = short side).
      labels: 'auto' | 'none' | 'folders'; see `folder_labels`.

    Raises:
      DataError: bad options, a missing folder or one with no images (naming the path and
        the extensions looked for).
    """
    imaging.check_options(resolution, channels, crop, crop_size)
    root = os.path.normpath(os.path.expanduser(os.fspath(root)))
    wanted = '/'.join(IMAGE_EXTENSIONS)
    if not os.path.isdir(root):
      raise DataError(f'image folder {root!r} does not exist or is not a folder; point it at '
                      f'a folder of {wanted} files')
    files = find_images(root)
    if not files:
      raise DataError(f'image folder {root!r} has no {wanted} files (searched recursively, '
                      'case-insensitive, hidden files skipped)')
    self._root = root
    self._files = files
    self._labels, class_names = folder_labels(files, labels, root)
    self._resolution, self._channels = int(resolution), int(channels)
    self._crop, self._crop_size = crop, int(crop_size)
    self.info = {
        'name': os.path.basename(root),
        'shape': (self._resolution, self._resolution, self._channels),
        'num_classes': len(class_names) if class_names is not None else None,
        'class_names': class_names,
        'num_examples': len(files),
        'source': 'folder',
        'dir': root,
    }

  def __len__(self) -> int:
    return len(self._files)

  def path(self, index: int) -> str:
    """The file that record `index` is decoded from."""
    return os.path.join(self._root, self._files[index])

  def __getitem__(self, index: int) -> dict:
    """Decodes record `index`: `{'image': uint8 [R, R, C], 'label': np.int32}`.

    Raises:
      IndexError: `index` out of range.
      BadImageError: the file is unreadable, truncated or not an image.
    """
    path = self.path(index)
    try:
      with Image.open(path) as img:
        img.load()
        # Camera photos store their rotation in EXIF; apply it so "up" is up.
        img = ImageOps.exif_transpose(img)
        image = imaging.to_square(img, self._resolution, self._channels, self._crop,
                                  self._crop_size)
    except _DECODE_ERRORS as e:
      raise BadImageError(path, f'{type(e).__name__}: {e}') from e
    except DataError as e:  # A crop_size larger than this image: name the file too.
      raise DataError(f'{path}: {e}') from e
    return {'image': image, 'label': np.int32(self._labels[index])}

  def __repr__(self) -> str:
    return (f'FolderRecords({self._root!r}, resolution={self._resolution}, '
            f'channels={self._channels}, n={len(self)})')
