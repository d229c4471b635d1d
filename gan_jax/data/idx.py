"""Reader for IDX files (the MNIST family's format), gzip'd or plain.

IDX layout: a 4-byte magic `00 00 <dtype code> <ndim>`, then `ndim` big-endian uint32 sizes,
then the row-major payload in big-endian `dtype`. Everything is validated so that a damaged
download surfaces as a one-line `DataError` naming the file, not as a reshape error deep
inside numpy.
"""

import math
import os
import struct
import zlib

import numpy as np

from gan_jax.data import names
from gan_jax.errors import DataError

# IDX dtype code -> big-endian numpy dtype.
IDX_DTYPES = {
    0x08: np.dtype('u1'),
    0x09: np.dtype('i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}

SPLITS = {'train': 'train', 'test': 't10k'}

_GZIP_MAGIC = b'\x1f\x8b'


def _read_bytes(path: str) -> tuple:
  """Returns `(content, complete)`: the (decompressed) bytes and whether the stream ended.

  Gzip is detected by its magic rather than by the file extension, so a decompressed file
  that kept its `.gz` name still reads. Truncated gzip is decompressed as far as possible
  (instead of letting `gzip` raise EOFError) so the caller can report expected vs found bytes.
  """
  try:
    with open(path, 'rb') as f:
      raw = f.read()
  except OSError as e:
    raise DataError(f'cannot read IDX file {path}: {e.strerror or e}; check the path and '
                    'its permissions') from e
  if raw[:2] != _GZIP_MAGIC:
    return raw, True
  chunks = []
  rest = raw
  complete = False
  try:
    # A gzip file may hold several concatenated members; decode them all.
    while rest:
      dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
      chunks.append(dec.decompress(rest))
      complete = dec.eof
      if not complete:
        break
      rest = dec.unused_data
  except zlib.error as e:
    raise DataError(f'IDX file {path} is not valid gzip ({e}) after {len(raw)} compressed '
                    'bytes; delete it and download it again') from e
  return b''.join(chunks), complete


def read_idx(path) -> np.ndarray:
  """Reads one IDX file.

  Args:
    path: path to an IDX file, gzip'd or not.

  Returns:
    A writable array in native byte order with the file's shape and dtype (uint8 for MNIST:
    images [N, H, W] in [0, 255], labels [N]).

  Raises:
    DataError: the file is unreadable, has a bad magic, is truncated, or its payload size
      disagrees with the sizes in its header.
  """
  path = os.fspath(path)
  data, complete = _read_bytes(path)
  if len(data) < 4:
    raise DataError(f'IDX file {path} is truncated: expected at least a 4-byte header, found '
                    f'{len(data)} bytes; delete it and download it again')
  magic = data[:4]
  code, ndim = magic[2], magic[3]
  if magic[:2] != b'\x00\x00' or code not in IDX_DTYPES or ndim == 0:
    codes = ', '.join(f'{c:02x}' for c in IDX_DTYPES)
    raise DataError(f'{path} is not an IDX file: magic bytes {magic.hex()}, expected '
                    f'0000<dtype><ndim> with dtype in {{{codes}}} and ndim > 0')
  header_len = 4 + 4 * ndim
  if len(data) < header_len:
    raise DataError(f'IDX file {path} is truncated: expected a {header_len}-byte header, found '
                    f'{len(data)} bytes; delete it and download it again')
  dims = struct.unpack(f'>{ndim}I', data[4:header_len])
  dtype = IDX_DTYPES[code]
  count = math.prod(dims)
  expected = header_len + count * dtype.itemsize
  if not complete or len(data) != expected:
    what = 'gzip stream is truncated' if not complete else 'payload size does not match header'
    raise DataError(f'IDX file {path}: {what}: expected {expected} bytes for shape {dims}, '
                    f'found {len(data)}; delete it and download it again')
  array = np.frombuffer(data, dtype=dtype, count=count, offset=header_len).reshape(dims)
  # astype copies: the result is writable and in native byte order.
  return array.astype(dtype.newbyteorder('='))


def find_idx_files(directory: str, split: str = 'train') -> tuple:
  """Finds the images and labels IDX files of a split in a directory.

  Accepts the standard names (`train-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, ...), with
  or without `.gz`, and the dotted variant (`train-images.idx3-ubyte`) some mirrors use.

  Args:
    directory: folder holding the files.
    split: 'train' or 'test'.

  Returns:
    `(images_path, labels_path)`, or `(None, None)` if either is missing.

  Raises:
    DataError: if `split` is not 'train' or 'test'.
  """
  if split not in SPLITS:
    raise DataError(f'split={split!r} is not an IDX split; use one of {sorted(SPLITS)}')
  prefix = SPLITS[split]
  found = []
  for kind, ndim_tag in (('images', 'idx3'), ('labels', 'idx1')):
    path = None
    for sep in ('-', '.'):
      for ext in ('.gz', ''):
        candidate = os.path.join(directory, f'{prefix}-{kind}{sep}{ndim_tag}-ubyte{ext}')
        if os.path.isfile(candidate):
          path = candidate
          break
      if path:
        break
    found.append(path)
  if None in found:
    return None, None
  return tuple(found)


def expected_file_names(split: str) -> str:
  """Returns the standard file names of a split, for error messages."""
  prefix = SPLITS.get(split, split)
  return f'{prefix}-images-idx3-ubyte[.gz] + {prefix}-labels-idx1-ubyte[.gz]'


def load_idx_dataset(directory, split: str = 'train') -> dict:
  """Loads the images and labels of one split from a directory of IDX files.

  Args:
    directory: folder holding e.g. `train-images-idx3-ubyte.gz` and
      `train-labels-idx1-ubyte.gz`.
    split: 'train' or 'test' (files prefixed 'train' or 't10k').

  Returns:
    `{'image': uint8 [N, H, W, C] in [0, 255] (C = 1 for the 3-D IDX images of MNIST),
    'label': int32 [N]}`.

  Raises:
    DataError: missing directory or files, unreadable files, non-uint8 images, or image and
      label counts that differ.
  """
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise DataError(f'IDX data directory {directory} does not exist; set config.data.dir to a '
                    f'folder with {expected_file_names(split)}')
  images_path, labels_path = find_idx_files(directory, split)
  if images_path is None:
    raise DataError(f'IDX data directory {directory} lacks {expected_file_names(split)}; '
                    'download them with `python -m gan_jax.data.download mnist --dir DIR`')
  images = read_idx(images_path)
  labels = read_idx(labels_path)
  if images.ndim == 3:
    images = images[..., None]  # Grayscale: NHW -> NHWC with C = 1.
  if images.ndim != 4 or images.dtype != np.uint8:
    raise DataError(f'IDX images {images_path} have shape {images.shape} and dtype '
                    f'{images.dtype}; expected uint8 [N, H, W] or [N, H, W, C]')
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise DataError(f'IDX labels {labels_path} have shape {labels.shape} and dtype '
                    f'{labels.dtype}; expected integer [N]')
  if images.shape[0] == 0:
    raise DataError(f'IDX images {images_path} hold zero images; expected at least one (a '
                    'truncated download? fetch the files again)')
  if images.shape[0] != labels.shape[0]:
    raise DataError(f'{images_path} has {images.shape[0]} images but {labels_path} has '
                    f'{labels.shape[0]} labels; the two files must come from the same split')
  return {'image': images, 'label': labels.astype(np.int32)}


def resolve_idx_dir(name: str, directory: str = '', split: str = 'train') -> str:
  """Returns the directory to read `name`'s IDX files from.

  Args:
    name: canonical dataset name (e.g. 'mnist', 'fashion_mnist').
    directory: `config.data.dir`; when set it must exist and hold the files, either directly
      or in a `<name>` sub-folder (so pointing it at the parent of `mnist/` also works).
    split: 'train' or 'test'.

  Returns:
    An existing directory holding the split's files.

  Raises:
    DataError: naming every directory searched, if none holds the files.
  """
  if directory:
    directory = os.path.expanduser(os.fspath(directory))
    if os.path.exists(directory) and not os.path.isdir(directory):
      raise DataError(f'config.data.dir={directory} is a file, not a directory; point it at the '
                      f'folder that holds {expected_file_names(split)}')
    if not os.path.isdir(directory):
      raise DataError(f'config.data.dir={directory} does not exist; point it at a folder with '
                      f'{expected_file_names(split)}, or leave it empty to search '
                      f'${names.DATA_DIR_ENV}/<name>')
    for sub in ('',) + names.DIR_SPELLINGS.get(name, (name,)):
      if find_idx_files(os.path.join(directory, sub), split)[0]:
        return os.path.join(directory, sub) if sub else directory
    raise DataError(f'config.data.dir={directory} lacks {expected_file_names(split)}; '
                    f'download them with `python -m gan_jax.data.download {name} --dir '
                    f'{directory}`')
  searched = names.candidate_dirs(name)
  for candidate in searched:
    if find_idx_files(candidate, split)[0]:
      return candidate
  raise DataError(f'no IDX files ({expected_file_names(split)}) for {name!r} in any of '
                  f'{searched}; set config.data.dir or ${names.DATA_DIR_ENV}, or run '
                  f'`python -m gan_jax.data.download {name}`')
