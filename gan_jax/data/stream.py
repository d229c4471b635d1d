"""The streaming input pipeline, on grain: for datasets that do not fit on every device.

    records = folder.FolderRecords(dir, resolution=64)        # random access, decodes one image
    feed = StreamFeed(records, mesh, seed=0, batch_size=256, n_critic=1)
    batch = feed.next()      # {'image': uint8 [n_critic, B, R, R, C], 'label': int32 [n_critic, B]},
                             # global jax.Arrays sharded on the mesh's 'data' axis (axis 1)

The element order is fixed by the seed alone. Epoch e is a permutation of the records
(grain's ``shuffle``, reseeded every epoch by ``repeat``); global batch t is elements
``[t B, (t + 1) B)`` of that endless stream; process p of P reads only its block of each global
batch, ``[t B + p b, t B + (p + 1) b)`` with ``b = B / P`` (``ProcessBlocks``). So no process
reads another's examples, one epoch reads every example once, and the global batches of a run on
P processes are those of a run on one process. Worker processes (``data.workers``,
``mp_prefetch``) decode; the batches are put together in the main process, so they do not depend
on the number of workers either.

Exact resume: ``StreamFeed`` is what orbax saves next to the TrainStates (grain's
``CheckpointSave`` handler, one JSON file per process): the iterator position after the last
batch a train step took, not after what the workers have prefetched. A run restored from step t
reads the batches an uninterrupted run reads after step t.

Unreadable files (``BadImageError``) stop the run with the file's name, or, with
``skip_bad_files``, are left out of the batch (the next element takes their place) and counted.
"""

import json
import sys
from typing import Optional

import grain
import jax
import numpy as np
from absl import flags

from gan_jax import parallel
from gan_jax.errors import ConfigError, DataError


class ProcessBlocks(grain.MapDataset):
  """Process ``p`` of ``P``'s view of an endless element stream: its ``b = B / P`` consecutive
  elements of every global batch of ``B``. Element ``i`` here is element
  ``(i // b) B + p b + i % b`` of the parent."""

  def __init__(self, parent: grain.MapDataset, global_batch: int, process_index: int,
               process_count: int):
    super().__init__(parent)
    self._global, self._index = global_batch, process_index
    self._local = global_batch // process_count

  def __len__(self) -> int:
    return sys.maxsize

  def __getitem__(self, index):
    if isinstance(index, slice):
      return self.slice(index)
    block, offset = divmod(index, self._local)
    return self._parent[block * self._global + self._index * self._local + offset]

  def __str__(self):
    return f'ProcessBlocks(B={self._global}, process={self._index}, b={self._local})'


class _Guarded:
  """A record source whose unreadable records become ``{'bad': True, ...}`` placeholders of the
  same structure (skip_bad_files), so that the worker processes carry on."""

  def __init__(self, records, skip_bad_files: bool):
    self.records, self.skip = records, skip_bad_files
    self.shape = tuple(records.info['shape'])

  def __len__(self):
    return len(self.records)

  def __getitem__(self, i):
    try:
      ex = self.records[i]
    except DataError as e:
      if not self.skip or not getattr(e, 'path', None):
        raise
      print(f'warning: skipping {e.path} (unreadable; config.data.skip_bad_files=True)',
            file=sys.stderr, flush=True)
      return {'image': np.zeros(self.shape, np.uint8), 'label': np.int32(0), 'bad': True}
    return {'image': ex['image'], 'label': np.int32(ex['label']), 'bad': False}


def _flip(ex, rng: np.random.Generator):
  """Horizontal flip with probability 1/2 (the generator is grain's, seeded per element)."""
  if rng.random() < 0.5:
    ex = dict(ex, image=np.ascontiguousarray(ex['image'][:, ::-1]))
  return ex


def element_dataset(records, *, seed: int, global_batch: int, process_index: int = 0,
                    process_count: int = 1, flip: bool = False,
                    skip_bad_files: bool = False) -> grain.MapDataset:
  """This process's endless, shuffled element stream (see the module docstring): elements
  ``{'image': uint8 [H, W, C], 'label': int32, 'bad': bool}``."""
  if global_batch % process_count:
    raise ConfigError(f'config.batch_size={global_batch} is not divisible by the '
                      f'{process_count} processes')
  ds = grain.MapDataset.source(_Guarded(records, skip_bad_files))
  ds = ds.shuffle(seed=seed % 2**32).repeat()
  if flip:  # keyed by the global position, so a flip does not depend on the process count
    ds = ds.random_map(_flip, seed=(seed + 1) % 2**32)
  return ProcessBlocks(ds, global_batch, process_index, process_count)


class LocalBatches:
  """This process's batches of ``size`` good elements, read through grain (``workers`` decoding
  processes, 0 = threads in this process).

  The elements cross from the workers in chunks of ``size`` consecutive ones (one pickled array
  per chunk, not one per image), and the batches are cut from the chunks here, so that a skipped
  file only shifts the batches and the stream does not depend on the number of workers.
  ``get_state``/``set_state``: the position after the last batch returned (the chunk it ends in,
  and how far into it).
  """

  def __init__(self, elements: grain.MapDataset, size: int, workers: int = 0,
               prefetch: int = 4):
    if not flags.FLAGS.is_parsed():  # grain reads its absl flags; a notebook has parsed none
      flags.FLAGS.mark_as_parsed()
    ds = elements.batch(size).to_iter_dataset(
        grain.ReadOptions(num_threads=0 if workers else 2, prefetch_buffer_size=0 if workers
                          else 2))
    if workers:
      ds = ds.mp_prefetch(grain.MultiprocessingOptions(
          num_workers=workers, per_worker_buffer_size=max(1, prefetch // size + 1)))
    self._ds, self.size = ds, size
    self._it = None
    self._chunk, self._offset = None, 0   # the current chunk and how much of it was used
    self._chunk_state = None              # grain's position before the current chunk
    self._pending = None                  # a position set before the iterator exists
    self.skipped = 0

  def _iterator(self):
    if self._it is None:
      self._it = iter(self._ds)
      if self._pending is not None:
        grain_state, offset = self._pending
        self._pending = None
        self._it.set_state(grain_state)
        if offset:
          self._next_chunk()
          self._offset = offset
    return self._it

  def _next_chunk(self):
    self._chunk_state = self._it.get_state()
    self._chunk, self._offset = next(self._it), 0

  def next(self) -> dict:
    """``{'image': uint8 [size, H, W, C], 'label': int32 [size]}``."""
    self._iterator()
    images, labels = [], []
    while len(images) < self.size:
      if self._chunk is None or self._offset == len(self._chunk['bad']):
        self._next_chunk()
      i = self._offset
      self._offset += 1
      if self._chunk['bad'][i]:
        self.skipped += 1
        continue
      images.append(self._chunk['image'][i])
      labels.append(self._chunk['label'][i])
    return {'image': np.stack(images), 'label': np.asarray(labels, np.int32)}

  def get_state(self) -> dict:
    if self._it is None:
      grain_state, offset = self._pending if self._pending else (None, 0)
    elif self._chunk is not None and self._offset < len(self._chunk['bad']):
      grain_state, offset = self._chunk_state, self._offset
    else:
      grain_state, offset = self._it.get_state(), 0
    return {'grain': grain_state, 'offset': offset, 'skipped': self.skipped}

  def set_state(self, state: dict):
    self.skipped = int(state.get('skipped', 0))
    self.close()
    self._chunk, self._offset = None, 0
    self._pending = (state['grain'], int(state.get('offset', 0)))

  def close(self):
    if self._it is not None and hasattr(self._it, 'close'):
      self._it.close()
    self._it = None


class StreamFeed:
  """Global train-step batches from ``records`` for the mesh: what ``train.py`` feeds the step
  and what the checkpoint saves (``get_state``/``set_state``/``start_prefetch``: the interface of
  grain's orbax handler; the state is bytes of JSON)."""

  def __init__(self, records, mesh, *, seed: int, batch_size: int, n_critic: int = 1,
               flip: bool = False, skip_bad_files: bool = False, workers: int = 0,
               prefetch: int = 4):
    self.mesh, self.n_critic, self.batch_size = mesh, n_critic, batch_size
    self.process_index, self.process_count = jax.process_index(), jax.process_count()
    parallel.check_batch_size(batch_size, mesh)
    elements = element_dataset(records, seed=seed, global_batch=batch_size,
                               process_index=self.process_index,
                               process_count=self.process_count, flip=flip,
                               skip_bad_files=skip_bad_files)
    self.local = LocalBatches(elements, batch_size // self.process_count, workers, prefetch)
    self.shape = tuple(records.info['shape'])
    self._sharding = parallel.batch_sharding(mesh, batch_axis=1)
    self._reported_skips = 0

  def next_local(self) -> dict:
    """This process's part of the next step's batches, numpy ``[n_critic, b, ...]``."""
    parts = [self.local.next() for _ in range(self.n_critic)]
    return {k: np.stack([p[k] for p in parts]) for k in ('image', 'label')}

  def next(self) -> dict:
    """The next step's global batches (uint8 images, int32 labels), sharded on axis 1."""
    local = self.next_local()
    n, b = self.n_critic, self.batch_size
    return {
        'image': jax.make_array_from_process_local_data(self._sharding, local['image'],
                                                        (n, b) + self.shape),
        'label': jax.make_array_from_process_local_data(self._sharding, local['label'], (n, b)),
    }

  def new_skips(self) -> int:
    """Files skipped as unreadable since the last call (for the log)."""
    new = self.local.skipped - self._reported_skips
    self._reported_skips = self.local.skipped
    return new

  # grain.checkpoint.CheckpointHandler's interface.
  def get_state(self) -> bytes:
    return json.dumps({'process_count': self.process_count, **self.local.get_state()}).encode()

  def set_state(self, state: bytes):
    state = json.loads(state)
    if state.get('process_count', 1) != self.process_count:
      raise DataError(f'the input pipeline state was saved by {state["process_count"]} '
                      f'processes; this job has {self.process_count}')
    self.local.set_state(state)
    self._reported_skips = self.local.skipped

  def start_prefetch(self):
    """Called by the restore handler; the workers start at the first ``next``."""

  def close(self):
    self.local.close()


def in_memory_bytes(info: dict) -> int:
  """Bytes the dataset takes as uint8 arrays on every device."""
  return int(np.prod(info['shape'])) * int(info['num_examples'])


def choose_pipeline(pipeline: str, info: dict, cache_mb: float) -> str:
  """'device' or 'stream' for ``config.data.pipeline`` ('auto' picks 'device' when the images
  take at most ``cache_mb`` MiB)."""
  if pipeline not in ('auto', 'device', 'stream'):
    raise ConfigError(f'config.data.pipeline={pipeline!r} is not valid; use auto, device or '
                      'stream')
  if pipeline != 'auto':
    return pipeline
  return 'device' if in_memory_bytes(info) <= cache_mb * 2**20 else 'stream'


def read_all(records, skip_bad_files: bool = False, desc: Optional[str] = None) -> dict:
  """Every record decoded into ``{'image': uint8 [N, H, W, C], 'label': int32 [N]}`` (the
  device path for a record source), with a progress bar for long reads."""
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  guarded = _Guarded(records, skip_bad_files)
  images, labels = [], []
  for i in tqdm(range(len(guarded)), desc=desc or 'reading images', unit='img',
                disable=len(guarded) < 2000 or jax.process_index() != 0, mininterval=1.0):
    ex = guarded[i]
    if ex['bad']:
      continue
    images.append(ex['image'])
    labels.append(ex['label'])
  if not images:
    raise DataError('every file of the dataset was unreadable')
  return {'image': np.stack(images), 'label': np.asarray(labels, np.int32)}
