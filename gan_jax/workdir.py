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
DATA_INFO_KEYS = ('name', 'shape', 'num_classes', 'num_examples', 'source')

# Keys that may change between launches of one run: the topology (a run saved on 8 devices
# resumes on 1, and the reverse) and the switch itself. ``model.kernels`` picks an
# implementation of the same function with the same parameter tree.
RESUMABLE_KEYS = frozenset({'allow_config_change', 'num_devices', 'model.kernels'})


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


def check_config_matches(config, file: str) -> bool:
  """Compares ``config`` with the run's ``config.json`` at ``file`` (read-only). Returns whether
  the file must be (re)written. Raises ConfigError naming the differing keys unless
  ``config.allow_config_change``; ``RESUMABLE_KEYS`` may differ freely."""
  new = _normalise(config.to_dict())
  if not os.path.exists(file):
    return True
  with open(file) as f:
    old = json.load(f)
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
  with open(cfg_path) as f:
    saved = json.load(f)
  # Defaults first, so runs saved before a key existed still load (with that key's default).
  config = config_base.base_config()
  _merge(config, saved)
  for key in ('g_hidden', 'd_hidden'):
    if key in config.model:
      config.model[key] = tuple(config.model[key])
  with open(info_path) as f:
    info = json.load(f)
  return config, info


def save_run_info(workdir: str, config, data_info: Dict[str, Any], write_config: bool):
  """Writes config.json (when ``write_config``) and data_info.json."""
  if write_config:
    write_json(path(workdir, CONFIG_FILE), config.to_dict())
  write_json(path(workdir, DATA_INFO_FILE),
             {k: v for k, v in data_info.items() if k in DATA_INFO_KEYS})


class WorkdirLock:
  """One workdir, one job: ``<workdir>/lock`` holds the owner's pid and host.

  A live owner makes a second launch fail with its pid; a lock left by a dead process (kill -9,
  a crashed node) is taken over with a warning.
  """

  def __init__(self, workdir: str):
    self.path = path(workdir, LOCK_FILE)
    self.held = False

  @staticmethod
  def _alive(pid: int) -> bool:
    try:
      os.kill(pid, 0)
    except ProcessLookupError:
      return False
    except PermissionError:
      return True
    return True

  def acquire(self):
    me = os.getpid()
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
      try:
        pid = int(open(self.path).read().split()[0])
      except (OSError, ValueError, IndexError):
        pid = -1
      if pid > 0 and pid != me and self._alive(pid):
        raise UserError(f'{os.path.dirname(self.path)} is in use by a live job (pid {pid}); wait '
                        'for it to finish or pass another --workdir') from None
      print(f'warning: taking over the stale lock {self.path} of pid {pid}, which is not running',
            file=sys.stderr, flush=True)
      fd = os.open(self.path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY)
    with os.fdopen(fd, 'w') as f:
      f.write(f'{me} {socket.gethostname()}\n')
    self.held = True

  def release(self):
    if self.held:
      try:
        os.remove(self.path)
      except FileNotFoundError:
        pass
      self.held = False
