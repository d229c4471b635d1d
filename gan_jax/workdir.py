"""The run directory: its layout, its lock, and the config and data facts saved in it.

  <workdir>/
    config.json, data_info.json   the config (compared at every relaunch) and the data's shape
    lock                          the owner's pid and host while a job runs
    checkpoints/<step>/           orbax checkpoints (gan_jax/checkpointing.py)
    checkpoints_best/             the checkpoint with the best in-training FD
    metrics.jsonl, tb/            scalars (gan_jax/hooks.py)
    samples/                      the fixed-latent pictures

Everything here reads or writes files and nothing else; ``gan_jax.run`` builds a run from them.
"""

import fcntl
import json
import os
import socket
import sys
from typing import Any, Dict, Tuple

import ml_collections

from gan_jax import config_base
from gan_jax.errors import ConfigError, UserError

CONFIG_FILE, DATA_INFO_FILE, LOCK_FILE = 'config.json', 'data_info.json', 'lock'
CHECKPOINTS, BEST_CHECKPOINTS, SAMPLES = 'checkpoints', 'checkpoints_best', 'samples'
# The facts of the data source that a run keeps: enough to rebuild its models without the data.
DATA_INFO_KEYS = ('name', 'shape', 'num_classes', 'num_examples', 'source', 'labels',
                  'label_probs', 'cluster_classes')

# Keys that may change between launches of one run: the topology (a run saved on 8 devices
# resumes on 1, and the reverse) and the switch itself. ``model.kernels`` picks an
# implementation of the same function with the same parameter tree.
RESUMABLE_KEYS = frozenset({'allow_config_change', 'num_devices', 'model.kernels',
                            'time_budget_s'})


def path(workdir: str, *parts: str) -> str:
  return os.path.join(workdir, *parts)


def check_writable(workdir: str):
  """Refuses a workdir that is a file or cannot be written, before anything is written."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f'--workdir={workdir} is a file, not a directory; pass a directory path')
  parent = workdir
  while not os.path.exists(parent):
    parent = os.path.dirname(os.path.abspath(parent))
  if not os.access(parent, os.W_OK) or not os.path.isdir(parent):
    raise UserError(f'--workdir={workdir} is not writable ({parent} does not allow writing); '
                    'pass a writable directory')


def create(workdir: str):
  try:
    os.makedirs(path(workdir, SAMPLES), exist_ok=True)
  except OSError as e:
    raise UserError(f'--workdir={workdir} cannot be created ({e.strerror}); pass a writable '
                    'directory') from None


def _flat(cfg: Dict[str, Any], prefix='') -> Dict[str, Any]:
  out = {}
  for k, v in cfg.items():
    if isinstance(v, dict):
      out.update(_flat(v, f'{prefix}{k}.'))
    else:
      out[f'{prefix}{k}'] = v
  return out


def _normalise(cfg: Dict[str, Any]):
  return json.loads(json.dumps(cfg, default=str))


def write_json(file: str, obj):
  """Writes ``obj`` as JSON atomically (a temporary file, then a rename)."""
  tmp = file + '.tmp'
  with open(tmp, 'w') as f:
    json.dump(_normalise(obj), f, indent=2, sort_keys=True)
  os.replace(tmp, file)


def _read_json(file: str):
  """The JSON object in ``file``; a damaged file is a UserError naming it (never overwritten)."""
  try:
    with open(file) as f:
      obj = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise UserError(f'{file} is not valid JSON ({e}); restore it from a backup, or pass a new '
                    '--workdir') from None
  if not isinstance(obj, dict):
    raise UserError(f'{file} holds a JSON {type(obj).__name__}, not an object; restore it, or '
                    'pass a new --workdir')
  return obj


def check_config_matches(config, file: str) -> bool:
  """Compares ``config`` with the run's ``config.json`` at ``file`` (read-only). Returns whether
  the file must be (re)written. Raises ConfigError naming the differing keys unless
  ``config.allow_config_change``; ``RESUMABLE_KEYS`` may differ freely."""
  new = _normalise(config.to_dict())
  if not os.path.exists(file):
    return True
  old = _read_json(file)
  a, b = _flat(old), _flat(new)
  # A key that a later version added to the base config, at its default value, is no change:
  # runs from before it resume (e.g. model.kernels, added with its only earlier behaviour).
  defaults = _flat(_normalise(config_base.base_config().to_dict()))
  added = [k for k in set(b) - set(a) if k in defaults and b[k] == defaults[k]]
  for k in added:
    a[k] = b[k]
  diff = sorted(k for k in set(a) | set(b)
                if a.get(k, '<unset>') != b.get(k, '<unset>'))
  strict = [k for k in diff if k not in RESUMABLE_KEYS]
  if strict and not config.get('allow_config_change', False):
    shown = ', '.join(f'{k}: {a.get(k, "<unset>")!r} -> {b.get(k, "<unset>")!r}'
                      for k in strict[:6])
    raise ConfigError(
        f'the config differs from {file} in {len(strict)} key(s) ({shown}); use a new --workdir '
        'or pass --config.allow_config_change=True to resume anyway')
  return bool(diff or added)


def _merge(config: ml_collections.ConfigDict, values: Dict[str, Any]):
  for k, v in values.items():
    if isinstance(v, dict):
      if k not in config:
        config[k] = ml_collections.ConfigDict()
      _merge(config[k], v)
    else:
      config[k] = tuple(v) if isinstance(v, list) else v


def load_run(workdir: str) -> Tuple[ml_collections.ConfigDict, tuple]:
  """(config, data shape) of the run in ``workdir``, for sampling and evaluation."""
  config, info = load_run_info(workdir)
  return config, tuple(info['shape'])


def load_run_info(workdir: str) -> Tuple[ml_collections.ConfigDict, Dict[str, Any]]:
  """(config, data_info dict) of the run in ``workdir``."""
  cfg_path, info_path = path(workdir, CONFIG_FILE), path(workdir, DATA_INFO_FILE)
  for p in (cfg_path, info_path):
    if not os.path.exists(p):
      raise UserError(f'--workdir={workdir} holds no run ({p} is missing); pass the workdir of a '
                      'run started with launch.py')
  saved = _read_json(cfg_path)
  # Defaults first, so runs saved before a key existed still load (with that key's default).
  config = config_base.base_config()
  _merge(config, saved)
  for key in ('g_hidden', 'd_hidden'):
    if key in config.model:
      config.model[key] = tuple(config.model[key])
  info = _read_json(info_path)
  if not isinstance(info.get('shape'), list):
    raise UserError(f'{info_path} has no data shape; restore it, or pass a new --workdir')
  return config, info


def save_run_info(workdir: str, config, data_info: Dict[str, Any], write_config: bool):
  """Writes config.json (when ``write_config``) and data_info.json."""
  if write_config:
    write_json(path(workdir, CONFIG_FILE), config.to_dict())
  write_json(path(workdir, DATA_INFO_FILE),
             {k: v for k, v in data_info.items() if k in DATA_INFO_KEYS})


class WorkdirLock:
  """One workdir, one job: an exclusive ``fcntl.flock`` on ``<workdir>/lock``, held on an open
  descriptor for the job's life; the file names the owner (``pid host``).

  The kernel drops the lock when its holder dies (kill -9, a crash), so a stale lock is simply
  free and two launches started at the same moment cannot both win: ``flock`` is atomic. The
  owner's line is written only while holding the lock, and a reader that finds the lock taken
  reports the pid in the file. A file that names a live process on this host, or any process on
  another host (where pids mean nothing here and ``flock`` may not reach over a network file
  system), is refused even without a held lock: the user removes it if that job is dead.
  """

  def __init__(self, workdir: str):
    self.path = path(workdir, LOCK_FILE)
    self.held = False
    self._fd = None

  @staticmethod
  def _alive(pid: int) -> bool:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    except PermissionError:
      return True
    return True

  def _owner(self, fd) -> Tuple[int, str]:
    """(pid, host) written in the lock file, or (-1, '') when it holds none."""
    os.lseek(fd, 0, os.SEEK_SET)
    words = os.read(fd, 4096).decode(errors='replace').split()
    try:
      return int(words[0]), (words[1] if len(words) > 1 else socket.gethostname())
    except (ValueError, IndexError):
      return -1, ''

  def _refuse(self, pid, host):
    where = (f'pid {pid}' if pid > 0 else 'pid not yet written') + (
        f' on host {host}' if host != socket.gethostname() else '')
    raise UserError(f'{os.path.dirname(self.path)} is in use by a live job ({where}); wait for it '
                    f'to finish or pass another --workdir (if that job is dead, delete {self.path})')

  def acquire(self):
    me, host = os.getpid(), socket.gethostname()
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        pid, owner_host = self._owner(fd)
        os.close(fd)
        self._refuse(pid, owner_host or host)
      # The holder before us may have removed the file between our open and our flock: then we
      # hold a lock on an unlinked file, and must start again on the file the path names now.
      try:
        same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
      except FileNotFoundError:
        same = False
      if same:
        break
      os.close(fd)
    pid, owner_host = self._owner(fd)
    if pid > 0 and pid != me and (owner_host != host or self._alive(pid)):
      os.close(fd)  # a job that does not use flock (or one on another host) may still run
      self._refuse(pid, owner_host)
    if pid > 0 and pid != me:
      print(f'warning: taking over the stale lock {self.path} of pid {pid}, which is not running',
            file=sys.stderr, flush=True)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f'{me} {host}\n'.encode(), 0)
    os.fsync(fd)
    self._fd, self.held = fd, True

  def release(self):
    if self.held:
      try:
        os.remove(self.path)  # while still holding the lock: no one can hold the old file
      except FileNotFoundError:
        pass
      os.close(self._fd)
      self._fd, self.held = None, False
