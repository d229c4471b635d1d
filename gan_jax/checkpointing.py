"""Orbax checkpoints of the full GANState under ``<workdir>/checkpoints``.

Orbax writes each step into a temporary directory and renames it when complete, so a process
killed mid-save leaves only a temporary directory, which is ignored. A step directory that is
damaged later (a truncated or missing file) is detected at restore: the newest *readable* step is
used, and the damaged newer ones are moved aside to ``<workdir>/checkpoints.corrupt/`` (never
deleted) so that the run can save those step numbers again.

A streamed run (``gan_jax.data.stream``) saves its input pipeline's position with each step:
items ``state`` (the GANState) and ``data`` (grain's orbax handler, one JSON file per process).
A run on device-resident data saves the GANState alone (orbax's single ``default`` item).
``restore`` reads either layout, so sampling and evaluation need not know which it was.
"""

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import sys
import threading
import time
from typing import Optional, Tuple

import grain
import jax
import orbax.checkpoint as ocp
from absl import logging as absl_logging

from gan_jax.errors import UserError


def _warn(msg):
  print(f'warning: {msg}', file=sys.stderr, flush=True)


class _FailedReadLeftovers(logging.Filter):
  """Drops the two reports a failed restore can still make after it has returned: asyncio's
  "Task exception was never retrieved" for an orbax read task, and tensorstore's "Event loop is
  closed" (an unraisable error) when a read finishes after orbax closed that restore's event
  loop. Both are about a step already reported unreadable; nothing is lost. The read task is
  orbax's ``async_deserialize`` or, depending on which read fails first, another coroutine
  whose exception is a tensorstore error (its message carries the ``tensorstore_spec``)."""

  def filter(self, record):
    message = record.getMessage()
    return not ('never retrieved' in message
                and ('async_deserialize' in message or 'tensorstore_spec' in message))

  @staticmethod
  def unraisablehook(hook):
    def drop(unraisable):
      if not (unraisable.exc_type is RuntimeError
              and str(unraisable.exc_value) == 'Event loop is closed'):
        hook(unraisable)
    drop.drops_closed_loop_errors = True
    return drop

  @classmethod
  def install(cls):
    """Process-wide, before the first read: those reports may come at any later time."""
    asyncio_log = logging.getLogger('asyncio')
    if not any(isinstance(f, cls) for f in asyncio_log.filters):
      asyncio_log.addFilter(cls())
    if not getattr(sys.unraisablehook, 'drops_closed_loop_errors', False):
      sys.unraisablehook = cls.unraisablehook(sys.unraisablehook)


@contextlib.contextmanager
def _quiet():
  """Silences what orbax and tensorstore report on their own while we try to read a damaged step:
  absl log lines, and tracebacks of their background threads and event loop. Our ``_warn`` line
  says what happened instead."""
  old_level = absl_logging.get_verbosity()
  old_hooks = sys.unraisablehook, threading.excepthook
  old_handler = None
  absl_logging.set_verbosity(absl_logging.ERROR)
  sys.unraisablehook = lambda *_: None
  threading.excepthook = lambda *_: None
  try:
    loop = asyncio.get_event_loop_policy().get_event_loop()
    old_handler = loop.get_exception_handler()
    loop.set_exception_handler(lambda *_: None)
  except RuntimeError:
    loop = None
  try:
    yield
  finally:
    absl_logging.set_verbosity(old_level)
    sys.unraisablehook, threading.excepthook = old_hooks
    if loop is not None:
      loop.set_exception_handler(old_handler)


class _Position:
  """A feed's position at save time, in the interface grain's orbax handler saves."""

  def __init__(self, state: bytes):
    self._state = state

  def get_state(self) -> bytes:
    return self._state


class Checkpoints:
  """Saves every ``every`` steps (and on demand), keeps the newest ``keep``, restores the latest.

  Restores go into an abstract target (``jax.eval_shape`` of the state creation, with the
  shardings the state should have now), so a checkpoint saved on one topology restores on another.
  """

  def __init__(self, directory: str, keep: int = 3, every: int = 1000, create: bool = True,
               data=None):
    """``data``: a streamed run's input feed (``get_state``/``set_state``, e.g.
    ``stream.StreamFeed``), saved and restored with every step; None for device data."""
    self.directory = os.path.abspath(directory)
    self.every = every
    self.keep = keep
    self.data = data
    self._create = create
    self.manager = self._open()

  def _open(self):
    with _quiet():  # orbax logs a warning for each step directory without its metadata file
      return ocp.CheckpointManager(
        self.directory,
          options=ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=self._create))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return sorted(self.manager.all_steps())

  def restore(self, abstract_state, step: Optional[int] = None):
    """The GANState at ``step`` (default: the latest); also sets ``self.data``'s position when
    the step holds one."""
    step = self.latest_step() if step is None else step
    step_dir = os.path.join(self.directory, str(step))
    if not os.path.isdir(os.path.join(step_dir, 'state')):
      if self.data is not None and os.path.isdir(step_dir):
        _warn(f'checkpoint step {step} holds no input-pipeline position (saved by a run on '
              'device-resident data); the data stream starts from its beginning')
      return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))
    items = {'state': ocp.args.StandardRestore(abstract_state)}
    if self.data is not None:
      self._check_data_files(step_dir)
      items['data'] = grain.checkpoint.CheckpointRestore(self.data)
    return self.manager.restore(step, args=ocp.args.Composite(**items))['state']

  def _check_data_files(self, step_dir: str):
    """Raises UserError (never a fallback that would move the checkpoint aside) when the step's
    input-pipeline position was saved by another number of processes."""
    index, count = jax.process_index(), jax.process_count()
    data_dir = os.path.join(step_dir, 'data')
    if not os.path.isdir(data_dir):
      return  # orbax reports the damage; restore_latest_good falls back
    if os.path.exists(os.path.join(data_dir, f'process_{index}-of-{count}.json')):
      return
    saved = sorted(n for n in os.listdir(data_dir) if n.startswith('process_'))
    if saved:
      other = saved[0].rsplit('-of-', 1)[-1].split('.')[0]
      raise UserError(f'{step_dir} holds the input pipeline position of a {other}-process job '
                      f'and this job has {count} processes; relaunch with {other} processes to '
                      'resume exactly (the per-process data shards depend on the count)')

  def restore_latest_good(self, abstract_state) -> Tuple[Optional[int], object]:
    """(step, state) of the newest checkpoint that restores, or (None, None) if there is none.

    Each step is tried on its own, with a fresh manager: a failed restore (an emptied step
    directory, a missing or truncated file) must not spoil the attempts at older steps. Unreadable
    newer steps get a warning naming them and are moved aside once a good step is found. If every
    step is unreadable, raises UserError and leaves every file where it is.
    """
    self._warn_about_stray_files()
    _FailedReadLeftovers.install()
    with _quiet():
      steps = self.all_steps()
    bad = []
    for step in reversed(steps):
      try:
        with _quiet():
          state = self.restore(abstract_state, step)
      except UserError:
        raise
      except Exception as e:  # orbax/tensorstore raise many types for damaged files
        reason = ' '.join(str(e).split())[:200]
        _warn(f'checkpoint step {step} in {self.directory} is unreadable ({type(e).__name__}: '
              f'{reason}); trying the previous one')
        bad.append(step)
        self._reopen()
        continue
      for b in bad:
        if jax.process_index() == 0:  # one process moves the files; all restored the same step
          self._quarantine(b)
      if bad:
        self._reopen()
        with _quiet():
          gc.collect()  # the failed reads' tasks are reported when collected; collect them here
      return step, state
    if bad:
      self.close()  # an open manager's background threads would print at exit
      raise UserError(f'no readable checkpoint in {self.directory} (steps {steps} all failed to '
                      'restore; nothing was deleted); move that directory away to start afresh')
    return None, None

  def _reopen(self):
    with _quiet():
      try:
        self.manager.close()
      except Exception:  # pylint: disable=broad-except  # closing after a failed read
        pass
      self.manager = self._open()

  def _warn_about_stray_files(self):
    """Warns about a step number that is a file, not a directory (orbax skips it silently)."""
    if not os.path.isdir(self.directory):
      return
    for name in sorted(os.listdir(self.directory)):
      if name.isdigit() and not os.path.isdir(os.path.join(self.directory, name)):
        _warn(f'{os.path.join(self.directory, name)} is a file, not a checkpoint step directory; '
              'skipped it')

  def _quarantine(self, step):
    src = os.path.join(self.directory, str(step))
    dst_root = self.directory.rstrip('/') + '.corrupt'
    os.makedirs(dst_root, exist_ok=True)
    dst = os.path.join(dst_root, f'{step}-{int(time.time())}')
    shutil.move(src, dst)
    _warn(f'moved unreadable checkpoint step {step} to {dst}')

  def should_save(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state) -> bool:
    if step in self.manager.all_steps():
      return False
    if self.data is None:
      return self.manager.save(step, args=ocp.args.StandardSave(state), force=True)
    # The position now, not when orbax's background thread writes it (the loop reads on).
    position = _Position(self.data.get_state())
    return self.manager.save(step, force=True, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=grain.checkpoint.CheckpointSave(position)))

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


class BestCheckpoint:
  """Keeps the one checkpoint with the lowest ``metric`` (e.g. FD) in its own directory.

  Orbax records the metric with each step, so a resumed run still knows the best so far.
  """

  def __init__(self, directory: str, metric: str):
    self.directory = os.path.abspath(directory)
    self.metric = metric
    self.manager = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
        max_to_keep=1, create=True, best_fn=lambda m: m[metric], best_mode='min'))

  def best(self):
    """(step, metric value) of the kept checkpoint, or (None, None)."""
    step = self.manager.best_step()
    if step is None:
      return None, None
    value = self.manager.metrics(step)
    return step, (value or {}).get(self.metric)

  def save(self, step: int, state, value: float) -> bool:
    """Saves when ``value`` beats the kept one; returns whether it did."""
    _, old = self.best()
    if old is not None and not value < old:
      return False
    if step in self.manager.all_steps():
      return False
    self.manager.save(step, args=ocp.args.StandardSave(state), metrics={self.metric: value},
                      force=True)
    return True

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_like(tree, sharding):
  """``jax.ShapeDtypeStruct`` leaves with ``sharding`` (for restoring onto the current devices)."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
