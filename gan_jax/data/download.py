"""Downloads the MNIST-family IDX files from a list of mirrors, with checksum verification.

Usage:
  python -m gan_jax.data.download mnist [--dir DIR] [--mirror URL ...]

Works without TensorFlow and without TFDS: the files are plain gzip'd IDX, fetched with
`urllib.request` (so `http(s)://` and `file://` mirrors both work).
"""

import argparse
import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import uuid
import zlib

from gan_jax.data import names
from gan_jax.errors import DataError

FILES = (
    'train-images-idx3-ubyte.gz',
    'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
)

DEFAULT_MIRRORS = {
    'mnist': (
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
        'https://storage.googleapis.com/cvdf-datasets/mnist/',
    ),
    'fashion_mnist': ('http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',),
}

# sha256 of the *decompressed* IDX content, not of the .gz: mirrors recompress the same data
# with different gzip settings/timestamps, so only the payload hash is stable across them.
# Computed from the original gzip IDX files as
# `hashlib.sha256(gzip.decompress(open(f, 'rb').read())).hexdigest()`.
SHA256 = {
    'mnist': {
        'train-images-idx3-ubyte.gz':
            'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
        'train-labels-idx1-ubyte.gz':
            '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
        't10k-images-idx3-ubyte.gz':
            '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
        't10k-labels-idx1-ubyte.gz':
            'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
    },
    'fashion_mnist': {
        'train-images-idx3-ubyte.gz':
            'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
        'train-labels-idx1-ubyte.gz':
            'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
        't10k-images-idx3-ubyte.gz':
            '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
        't10k-labels-idx1-ubyte.gz':
            '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
    },
}

_CHUNK = 1 << 20
_TIMEOUT_S = 60


class _ChecksumError(Exception):
  """A fetched file's decompressed content does not have the expected sha256."""


def _one_line(text) -> str:
  """Collapses whitespace so per-mirror reasons keep the DataError message on one line."""
  return ' '.join(str(text).split())


def decompressed_sha256(path: str) -> str:
  """Returns the hex sha256 of a gzip file's decompressed content.

  Raises:
    OSError, EOFError, zlib.error: if the file is missing, not gzip, or truncated.
  """
  digest = hashlib.sha256()
  with gzip.open(path, 'rb') as f:
    while chunk := f.read(_CHUNK):
      digest.update(chunk)
  return digest.hexdigest()


def _is_verified(path: str, expected: str) -> bool:
  """Whether `path` exists and decompresses to content with sha256 `expected`."""
  if not os.path.isfile(path):
    return False
  try:
    return decompressed_sha256(path) == expected
  except (OSError, EOFError, zlib.error):
    return False


def _fetch(url: str, dest: str, desc: str, progress: bool) -> None:
  """Streams `url` into the file `dest`, with a tqdm progress bar labelled `desc`."""
  import tqdm  # pylint: disable=g-import-not-at-top  # Only the download path needs it.
  with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response, open(dest, 'xb') as out:
    total = response.headers.get('Content-Length')
    # disable=None lets tqdm hide the bar when stderr is not a terminal (e.g. log files).
    with tqdm.tqdm(total=int(total) if total else None, unit='B', unit_scale=True,
                   desc=desc,
                   disable=None if progress else True) as bar:
      while chunk := response.read(_CHUNK):
        out.write(chunk)
        bar.update(len(chunk))


def _mirror_url(mirror: str, filename: str) -> str:
  return mirror.rstrip('/') + '/' + filename


def _download_file(filename: str, expected: str, directory: str, mirrors, progress: bool):
  """Fetches one file from the first mirror that serves verified content.

  The file is written to a hidden temp file in `directory` and renamed into place only after
  its checksum matched, so an interrupted or corrupt download never sits under the final
  name (and `os.replace` within one directory is atomic).

  Returns:
    A list of `'url: reason'` strings, one per failed mirror, empty on success.
  """
  failures = []
  final = os.path.join(directory, filename)
  for mirror in mirrors:
    url = _mirror_url(mirror, filename)
    # A unique hidden name (not mkstemp, whose 0600 mode would survive the rename; open()
    # in _fetch honours the umask like any other download).
    tmp = os.path.join(directory, f'.{filename}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part')
    try:
      _fetch(url, tmp, filename, progress)
      got = decompressed_sha256(tmp)
      if got != expected:
        raise _ChecksumError(f'sha256 of decompressed content is {got[:12]}..., expected '
                             f'{expected[:12]}...')
      os.replace(tmp, final)
      return []
    except urllib.error.HTTPError as e:
      failures.append(f'{url}: HTTP {e.code} {_one_line(e.reason)}')
    except urllib.error.URLError as e:
      failures.append(f'{url}: {_one_line(e.reason)}')
    except (_ChecksumError, OSError, EOFError, zlib.error, ValueError) as e:
      # OSError covers socket timeouts and gzip.BadGzipFile; ValueError a malformed URL.
      failures.append(f'{url}: {type(e).__name__}: {_one_line(e)}')
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  return failures


def download_dataset(name: str, directory: str = '', mirrors=(), progress: bool = True) -> str:
  """Downloads and verifies the four IDX files of an MNIST-family dataset.

  Files already present with the right checksum are skipped; present but corrupt ones are
  downloaded again.

  Args:
    name: 'mnist' or 'fashion_mnist' ('fashion-mnist' accepted).
    directory: destination folder (created if needed); '' means
      `$GAN_JAX_DATA_DIR/<name>`, or `~/.cache/gan_jax/data/<name>` when that is unset.
    mirrors: base URLs tried in order for each file; empty means `DEFAULT_MIRRORS[name]`.
    progress: show a tqdm progress bar (when stderr is a terminal).

  Returns:
    The destination directory, holding the four verified `.gz` files.

  Raises:
    DataError: unknown dataset, unwritable directory, or a file no mirror could provide
      (listing each mirror tried and why it failed).
  """
  canonical = names.canonical_name(name)
  if canonical not in SHA256:
    raise DataError(f'cannot download dataset {name!r}: only {sorted(SHA256)} are '
                    'downloadable; use source="tfds" for other datasets')
  if isinstance(mirrors, str):
    mirrors = (mirrors,)
  mirrors = tuple(mirrors) or DEFAULT_MIRRORS[canonical]
  for mirror in mirrors:
    if not isinstance(mirror, str) or not mirror:
      raise DataError(f'mirror {mirror!r} is not a URL; use base URLs like '
                      f'{DEFAULT_MIRRORS[canonical][0]!r} or file:///path/to/dir/')
  directory = os.path.expanduser(os.fspath(directory)) if directory else (
      names.default_download_dir(canonical))
  created = not os.path.exists(directory)
  try:
    os.makedirs(directory, exist_ok=True)
  except OSError as e:
    raise DataError(f'cannot create download directory {directory}: {e.strerror or e}; '
                    'choose another with --dir or config.data.dir') from e
  for filename in FILES:
    expected = SHA256[canonical][filename]
    if _is_verified(os.path.join(directory, filename), expected):
      continue
    # Checked up front: otherwise each mirror would be blamed for the local permission error.
    if not os.access(directory, os.W_OK):
      raise DataError(f'download directory {directory} is not writable; choose another with '
                      '--dir or config.data.dir')
    failures = _download_file(filename, expected, directory, mirrors, progress)
    if failures:
      if created and not os.listdir(directory):
        # Don't leave an empty folder behind that later looks like a (broken) dataset dir.
        os.rmdir(directory)
      raise DataError(f'could not download {filename} of {canonical} into {directory} from '
                      f'any of {len(mirrors)} mirror(s): {"; ".join(failures)}; pass working '
                      'mirrors with --mirror / config.data.mirrors, or copy the files there')
  return directory


def main(argv=None) -> int:
  """CLI entry point. Returns the process exit status (2 on a DataError)."""
  parser = argparse.ArgumentParser(
      prog='python -m gan_jax.data.download',
      description='Download and verify the MNIST-family IDX files.')
  parser.add_argument('name', help=f'dataset: {", ".join(SHA256)} (fashion-mnist accepted)')
  parser.add_argument('--dir', default='',
                      help=f'destination (default: ${names.DATA_DIR_ENV}/<name> or '
                      '~/.cache/gan_jax/data/<name>)')
  parser.add_argument('--mirror', action='append', default=[],
                      help='base URL to try, in order; repeatable (default: built-in mirrors)')
  parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
  args = parser.parse_args(argv)
  try:
    directory = download_dataset(args.name, args.dir, args.mirror,
                                 progress=not args.no_progress)
  except DataError as e:
    print(f'error: {e}', file=sys.stderr)
    return 2
  print(directory)
  return 0


if __name__ == '__main__':
  sys.exit(main())
