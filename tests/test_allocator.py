"""The tcmalloc re-exec of our command-line programs (gan_jax/allocator.py)."""

import os
import subprocess
import sys

from gan_jax import allocator

FOUND = lambda: 'libtcmalloc_minimal.so.4'
NONE = lambda: None


def test_preload_env_prepends_the_library_and_marks_the_child():
  env = allocator.preload_env({'PATH': '/bin', 'LD_PRELOAD': 'libfoo.so'}, find=FOUND)
  assert env['LD_PRELOAD'] == 'libtcmalloc_minimal.so.4:libfoo.so'
  assert env[allocator.MARKER] == '1' and env['PATH'] == '/bin'
  assert allocator.preload_env({}, find=FOUND)['LD_PRELOAD'] == 'libtcmalloc_minimal.so.4'


def test_preload_env_keeps_freed_pages_unless_the_user_chose_a_release_rate():
  """tcmalloc's default release rate returns freed pages to the kernel and the next step
  faults them in again; the child gets rate 0, or the rate already in the environment."""
  assert allocator.preload_env({}, find=FOUND)['TCMALLOC_RELEASE_RATE'] == '0'
  env = allocator.preload_env({'TCMALLOC_RELEASE_RATE': '3'}, find=FOUND)
  assert env['TCMALLOC_RELEASE_RATE'] == '3'


def test_preload_env_leaves_alone_when_off_done_preloaded_or_missing():
  assert allocator.preload_env({allocator.ENV: '0'}, find=FOUND) is None
  assert allocator.preload_env({allocator.MARKER: '1'}, find=FOUND) is None
  assert allocator.preload_env({'LD_PRELOAD': '/x/libtcmalloc.so.4'}, find=FOUND) is None
  assert allocator.preload_env({}, find=NONE) is None
  # An explicit library needs no search.
  env = allocator.preload_env({allocator.ENV: '/opt/lib/libtcmalloc.so'}, find=NONE)
  assert env['LD_PRELOAD'] == '/opt/lib/libtcmalloc.so'


def test_reexec_runs_the_same_command_once_with_the_library_preloaded(tmp_path):
  """A real re-exec, with a harmless library standing in for tcmalloc (libm): the script runs
  twice (once before the exec, once after), the second time with LD_PRELOAD and the marker,
  the same pid and arguments, and no third time."""
  script = tmp_path / 'prog.py'
  script.write_text(
      'import os, sys\n'
      'print("run", os.getpid(), os.environ.get("LD_PRELOAD"), sys.argv[1:], flush=True)\n'
      'from gan_jax import allocator\n'
      'allocator.reexec_with_tcmalloc()\n'
      'print("after", os.environ.get(allocator.MARKER), flush=True)\n')
  repo = os.path.dirname(os.path.dirname(os.path.abspath(allocator.__file__)))
  env = dict(os.environ, **{allocator.ENV: 'libm.so.6'})
  env['PYTHONPATH'] = repo + os.pathsep + env.get('PYTHONPATH', '')
  env.pop(allocator.MARKER, None)
  env.pop('LD_PRELOAD', None)
  r = subprocess.run([sys.executable, str(script), '--flag=1'], capture_output=True, text=True,
                     env=env, timeout=60)
  assert r.returncode == 0, r.stderr
  lines = r.stdout.splitlines()
  assert [l.split()[0] for l in lines] == ['run', 'run', 'after'], lines
  first, second = lines[0].split(maxsplit=3), lines[1].split(maxsplit=3)
  assert first[1] == second[1]  # same pid: exec, not a child
  assert first[2] == 'None' and second[2] == 'libm.so.6'
  assert first[3] == second[3] == "['--flag=1']"
  assert lines[2] == 'after 1'
