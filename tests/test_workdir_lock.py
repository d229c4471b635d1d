"""The workdir lock under races: two launches at the same moment, with and without a stale lock,
and locks that name another host. Forked processes call ``WorkdirLock.acquire`` together."""

import multiprocessing
import os
import socket
import subprocess
import time

import pytest

from gan_jax import workdir
from gan_jax.errors import UserError


def _dead_pid():
  p = subprocess.Popen(['true'])
  p.wait()
  return p.pid


def _contend(wd, barrier, results):
  lock = workdir.WorkdirLock(wd)
  barrier.wait()
  try:
    lock.acquire()
  except UserError:
    results.put('refused')
    return
  results.put('won')
  time.sleep(0.5)  # hold the lock while the other process tries
  lock.release()


@pytest.mark.parametrize('stale', [False, True], ids=['absent', 'stale'])
def test_forty_concurrent_acquisitions_have_exactly_one_winner(tmp_path, stale):
  ctx = multiprocessing.get_context('fork')
  outcomes = []
  for trial in range(40):
    wd = str(tmp_path / f't{trial}')
    os.makedirs(wd)
    if stale:
      with open(os.path.join(wd, 'lock'), 'w') as f:
        f.write(f'{_dead_pid()} {socket.gethostname()}\n')
    barrier, results = ctx.Barrier(2, timeout=30), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(wd, barrier, results)) for _ in range(2)]
    for p in procs:
      p.start()
    got = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
      p.join(timeout=30)
    outcomes.append(tuple(got))
    assert not os.path.exists(os.path.join(wd, 'lock'))  # the winner released it
  assert outcomes == [('refused', 'won')] * 40, outcomes


def test_a_lock_of_another_host_is_not_taken_over_by_pid(tmp_path):
  wd = str(tmp_path)
  with open(os.path.join(wd, 'lock'), 'w') as f:
    f.write(f'{_dead_pid()} some-other-host\n')
  with pytest.raises(UserError, match=r'in use by a live job \(pid \d+ on host some-other-host\).*'
                     r'if that job is dead, delete'):
    workdir.WorkdirLock(wd).acquire()
  assert open(os.path.join(wd, 'lock')).read().endswith('some-other-host\n')  # left as it was


def test_a_held_lock_refuses_and_release_frees_it(tmp_path):
  wd = str(tmp_path)
  first = workdir.WorkdirLock(wd)
  first.acquire()
  assert open(os.path.join(wd, 'lock')).read() == f'{os.getpid()} {socket.gethostname()}\n'
  ctx = multiprocessing.get_context('fork')
  results = ctx.Queue()
  p = ctx.Process(target=lambda: results.put(_try(wd)))
  p.start()
  assert results.get(timeout=30).startswith(f'refused: {wd} is in use by a live job (pid {os.getpid()})')
  p.join()
  first.release()
  assert not os.path.exists(os.path.join(wd, 'lock'))
  second = workdir.WorkdirLock(wd)
  second.acquire()
  second.release()


def _try(wd):
  try:
    workdir.WorkdirLock(wd).acquire()
  except UserError as e:
    return f'refused: {e}'
  return 'won'
