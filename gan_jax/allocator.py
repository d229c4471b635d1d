"""Run our command-line programs under tcmalloc where the machine has it.

XLA:CPU allocates each execution's temporary buffers afresh. Under glibc's malloc, a buffer
above its mmap threshold (32 MiB at most) is a fresh ``mmap`` every step, so every step pays
page faults and zeroing for tens of MB of temporaries: a dot feeding an overlap-add (the D
conv's input gradient, batch 64) took 16 ms under glibc and 3.9 ms under tcmalloc, and the
MNIST DCGAN step ran at 9.02 against 6.37 steps/s (+13 % in an alternating A/B of an earlier
form of the step; benchmarks/README.md). tcmalloc keeps freed spans for
reuse. Interposing malloc must happen when the process starts, so the programs re-execute
themselves once with ``LD_PRELOAD`` set; this module imports nothing heavy, so ``launch.py``
calls it before importing JAX.

The re-executed process also gets ``TCMALLOC_RELEASE_RATE=0`` (unless set): tcmalloc keeps
its freed pages instead of returning them to the kernel between steps.

``GAN_JAX_TCMALLOC``: unset or ``1`` = look for ``libtcmalloc_minimal.so.4`` /
``libtcmalloc.so.4`` (Debian/Ubuntu: ``apt-get install libtcmalloc-minimal4``); ``0`` = off;
a path or soname = preload that library. In a notebook, start Jupyter with
``LD_PRELOAD=libtcmalloc_minimal.so.4 TCMALLOC_RELEASE_RATE=0`` instead.
"""

import ctypes.util
import os
import sys
from typing import Mapping, Optional

ENV = 'GAN_JAX_TCMALLOC'
# Set in the re-executed process: never re-execute twice, whatever happened to LD_PRELOAD.
MARKER = '_GAN_JAX_TCMALLOC_REEXEC'
LIBRARIES = ('tcmalloc_minimal', 'tcmalloc')
# tcmalloc hands freed pages back to the kernel by default (rate 1), and the next step faults
# them in again: ~5000 minor page faults per step in the DCGAN at batch 256 (about 20 MB zeroed
# afresh), none at rate 0. A setting already in the environment is kept.
RELEASE_RATE = 'TCMALLOC_RELEASE_RATE'


def find_tcmalloc() -> Optional[str]:
  """The soname of an installed tcmalloc, or None."""
  if not sys.platform.startswith('linux'):
    return None
  for name in LIBRARIES:
    found = ctypes.util.find_library(name)
    if found:
      return found
  return None


def preload_env(environ: Mapping[str, str], find=find_tcmalloc) -> Optional[dict]:
  """The environment to re-execute with, or None to run on as is (off, already done, already
  preloaded, or no tcmalloc here)."""
  setting = environ.get(ENV, '1').strip()
  if setting == '0' or environ.get(MARKER):
    return None
  preload = environ.get('LD_PRELOAD', '')
  if 'tcmalloc' in preload:
    return None
  lib = find() if setting in ('', '1') else setting
  if not lib:
    return None
  env = dict(environ)
  env['LD_PRELOAD'] = f'{lib}:{preload}' if preload else lib
  env.setdefault(RELEASE_RATE, '0')
  env[MARKER] = '1'
  return env


def reexec_with_tcmalloc() -> None:
  """Replace this process by the same command under tcmalloc (same pid, argv and
  environment plus ``LD_PRELOAD``), when ``preload_env`` says so; else return."""
  env = preload_env(os.environ)
  if env is None:
    return
  argv = [sys.executable] + list(getattr(sys, 'orig_argv', [sys.executable] + sys.argv)[1:])
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, argv, env)
