"""The streaming input pipeline (gan_jax/data/stream.py): shards, epochs, workers, exact resume,
bad files, and training through launch.py on one and two processes, killed and relaunched.

The records are index-coded: record i's image holds the value i in its first pixel, so a batch
says exactly which examples it holds.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from conftest import REPO, subprocess_env
from gan_jax import checkpointing, parallel
from gan_jax.data import array_file, stream
from gan_jax.data.folder import BadImageError
from gan_jax.errors import ConfigError, UserError

N = 48
# flax's layers for the 1-vs-2-process comparison: with the XLA:CPU kernels (the CPU default) the
# scaled DCGAN's G gradients of the two topologies differ by ~1e-3 relative after 6 steps (its
# D and the losses agree to 1e-6), while flax's layers agree to 1e-5: see benchmarks/README.md.
KERNELS = ('--config.model.kernels=flax',)


def _write_npy(path, n=N, size=8):
  images = np.zeros((n, size, size, 3), np.uint8)
  images[:, :, :, 0] = np.arange(n, dtype=np.uint8)[:, None, None]
  images[:, :, :, 1] = np.linspace(0, 255, size, dtype=np.uint8)[None, None, :]  # a left-right ramp
  np.save(path, images)
  return str(path)


@pytest.fixture
def npy(tmp_path):
  return _write_npy(tmp_path / 'images.npy')


def _ids(batch):
  return [int(v) for v in batch['image'][:, 0, 0, 0]]


def _read(records, steps, batch, *, seed=3, index=0, count=1, workers=0, state=None, **kw):
  elements = stream.element_dataset(records, seed=seed, global_batch=batch, process_index=index,
                                    process_count=count, **kw)
  local = stream.LocalBatches(elements, batch // count, workers)
  if state is not None:
    local.set_state(json.loads(json.dumps(state)))
  out = [_ids(local.next()) for _ in range(steps)]
  state = local.get_state()
  local.close()
  return out, state


@pytest.mark.parametrize('count', [2, 4])
def test_processes_read_disjoint_blocks_of_the_one_process_batches(npy, count):
  records = array_file.ArrayRecords(npy)
  one, _ = _read(records, N // 8, 8)
  assert sorted(sum(one, [])) == list(range(N))          # one epoch: every example once
  parts = [_read(records, N // 8, 8, index=p, count=count)[0] for p in range(count)]
  seen = [sum(p, []) for p in parts]
  for a in range(count):
    for b in range(a + 1, count):
      assert not set(seen[a]) & set(seen[b])             # disjoint shards
  assert sorted(sum(seen, [])) == list(range(N))         # none missed
  for t in range(N // 8):                                # global batch t = the 1-process batch t
    assert sum((parts[p][t] for p in range(count)), []) == one[t]
  # Random flips too: each element's flip is its own, whichever process reads it.
  flips = lambda index, n: stream.LocalBatches(stream.element_dataset(
      records, seed=3, global_batch=8, process_index=index, process_count=n, flip=True),
                                               8 // n).next()['image']
  np.testing.assert_array_equal(np.concatenate([flips(p, count) for p in range(count)]),
                                flips(0, 1))


def test_each_epoch_is_a_new_permutation_and_the_seed_fixes_it(npy):
  records = array_file.ArrayRecords(npy)
  two_epochs, _ = _read(records, 2 * N // 8, 8)
  first, second = sum(two_epochs[:N // 8], []), sum(two_epochs[N // 8:], [])
  assert sorted(first) == sorted(second) == list(range(N))
  assert first != second and first != list(range(N))
  assert _read(records, 3, 8)[0] == two_epochs[:3]
  assert _read(records, 3, 8, seed=4)[0] != two_epochs[:3]


def test_workers_give_the_same_batches_and_resume_is_exact(npy):
  records = array_file.ArrayRecords(npy)
  straight, _ = _read(records, 8, 8)
  with_workers, _ = _read(records, 8, 8, workers=2)
  assert with_workers == straight
  head, state = _read(records, 3, 8, workers=2)
  tail, _ = _read(records, 5, 8, workers=2, state=state)  # a new process: JSON state only
  assert head + tail == straight


class _Flaky:
  """Index-coded records where record 5 is an unreadable file."""
  info = {'shape': (2, 2, 3), 'num_examples': 24, 'name': 'flaky'}

  def __len__(self):
    return 24

  def __getitem__(self, i):
    if i == 5:
      raise BadImageError('/data/broken.png', 'truncated')
    return {'image': np.full((2, 2, 3), i, np.uint8), 'label': np.int32(i)}


def test_a_bad_file_stops_the_stream_or_is_skipped_and_counted():
  with pytest.raises(BadImageError, match='broken.png'):
    _read(_Flaky(), 3, 8)
  elements = stream.element_dataset(_Flaky(), seed=3, global_batch=8, skip_bad_files=True)
  local = stream.LocalBatches(elements, 8)
  seen = sum((_ids(local.next()) for _ in range(6)), [])  # 48 good elements: two epochs
  assert 5 not in seen and sorted(set(seen)) == sorted(set(range(24)) - {5})
  assert local.skipped == 2 and local.get_state()['skipped'] == 2
  # Resuming in the middle of a chunk whose batches a skipped file shifted: the same stream.
  fresh = lambda: stream.LocalBatches(stream.element_dataset(
      _Flaky(), seed=3, global_batch=8, skip_bad_files=True), 8)
  first = fresh()
  head = [_ids(first.next()) for _ in range(2)]
  resumed = fresh()
  resumed.set_state(json.loads(json.dumps(first.get_state())))
  assert head + [_ids(resumed.next()) for _ in range(4)] == [seen[8 * k:8 * k + 8]
                                                            for k in range(6)]


def test_flips_mirror_about_half_and_are_fixed_by_the_seed(npy):
  records = array_file.ArrayRecords(npy)
  elements = stream.element_dataset(records, seed=3, global_batch=8, flip=True)
  batch = stream.LocalBatches(elements, 48).next()['image']
  ramp = np.linspace(0, 255, 8, dtype=np.uint8)
  flipped = np.array([np.array_equal(im[0, :, 1], ramp[::-1]) for im in batch])
  kept = np.array([np.array_equal(im[0, :, 1], ramp) for im in batch])
  assert np.all(flipped ^ kept) and 12 <= flipped.sum() <= 36
  again = stream.LocalBatches(stream.element_dataset(records, seed=3, global_batch=8, flip=True),
                              48).next()['image']
  np.testing.assert_array_equal(batch, again)


def test_choose_pipeline_by_size():
  info = {'shape': (64, 64, 3), 'num_examples': 1000}  # 11.7 MiB
  assert stream.choose_pipeline('auto', info, 12.0) == 'device'
  assert stream.choose_pipeline('auto', info, 11.0) == 'stream'
  assert stream.choose_pipeline('stream', info, 1e9) == 'stream'
  with pytest.raises(ConfigError, match="pipeline='sometimes'"):
    stream.choose_pipeline('sometimes', info, 1.0)


def test_the_checkpoint_holds_the_feeds_position(npy, tmp_path):
  records = array_file.ArrayRecords(npy)
  mesh = parallel.make_mesh(1)
  make = lambda: stream.StreamFeed(records, mesh, seed=5, batch_size=8, n_critic=2)
  def ids(feed):  # the example ids of one step's n_critic = 2 batches
    images = np.asarray(feed.next()['image'])
    return [_ids({'image': images[k]}) for k in range(2)]

  feed = make()
  straight = [ids(feed) for _ in range(4)]
  feed.close()
  feed = make()
  state = {'w': jax.numpy.arange(3.0)}
  for _ in range(2):
    feed.next()
  ckpt = checkpointing.Checkpoints(str(tmp_path / 'ckpt'), data=feed)
  ckpt.save(2, state)
  ckpt.close()
  feed.next()  # read past the checkpoint, as a killed run would have
  feed.close()
  fresh = make()
  ckpt = checkpointing.Checkpoints(str(tmp_path / 'ckpt'), data=fresh)
  step, restored = ckpt.restore_latest_good(state)
  ckpt.close()
  assert step == 2 and np.allclose(restored['w'], [0, 1, 2])
  assert [ids(fresh) for _ in range(2)] == straight[2:]
  # Sampling restores the state alone; a job with another process count is told, and the
  # checkpoint stays where it is.
  plain = checkpointing.Checkpoints(str(tmp_path / 'ckpt'), create=False)
  assert np.allclose(plain.restore(state)['w'], [0, 1, 2])
  plain.close()
  data_dir = tmp_path / 'ckpt' / '2' / 'data'
  os.rename(data_dir / 'process_0-of-1.json', data_dir / 'process_0-of-2.json')
  ckpt = checkpointing.Checkpoints(str(tmp_path / 'ckpt'), data=make())
  with pytest.raises(UserError, match='2-process job and this job has 1'):
    ckpt.restore_latest_good(state)
  assert os.path.isdir(tmp_path / 'ckpt' / '2')


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_read_disjoint_shards_of_the_same_global_batches(npy, tmp_path):
  """jax.distributed on CPU, one device per process: each process reads only its half of each
  global batch; over one epoch no example is read twice or missed; the gathered global batches
  are those of one process with the same seed."""
  address = f'localhost:{_free_port()}'
  outs = [str(tmp_path / f'p{i}.json') for i in range(2)]
  env = subprocess_env()
  procs = [subprocess.Popen([sys.executable, os.path.join(REPO, 'tests', 'stream_worker.py'),
                             npy, outs[i], address, '2', str(i), '8', str(N // 8)],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for i in range(2)]
  for i, p in enumerate(procs):
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, f'process {i}:\n{out[-2000:]}\n{err[-3000:]}'
  seen = [json.load(open(o)) for o in outs]
  assert [s['count'] for s in seen] == [2, 2] and seen[0]['devices'] == 2
  local = [sum(s['local'], []) for s in seen]
  assert not set(local[0]) & set(local[1])
  assert sorted(local[0] + local[1]) == list(range(N))
  one, _ = _read(array_file.ArrayRecords(npy), N // 8, 8, seed=7)
  assert seen[0]['global'] == seen[1]['global'] == one
  assert [a + b for a, b in zip(seen[0]['local'], seen[1]['local'])] == one


def _launch_args(npy, workdir, steps, every, *extra):
  return [sys.executable, 'launch.py', '--config=experiments/folder.py:smoke',
          f'--workdir={workdir}', '--config.data.source=npz', f'--config.data.path={npy}',
          '--config.data.pipeline=stream', '--config.data.workers=1',
          f'--config.num_steps={steps}', f'--config.checkpoint_every={every}',
          f'--config.log_every={every}', f'--config.eval_every={steps}', *extra]


def _final_params(workdir):
  from gan_jax import run as run_lib  # pylint: disable=g-import-not-at-top
  _, _, _, state = run_lib.restore_run(workdir)
  return jax.device_get(state)


def _max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.slow
def test_kill_9_mid_epoch_and_relaunch_equals_an_uninterrupted_run(tmp_path):
  """A streamed run (6 steps an epoch) killed with SIGKILL after its first checkpoint and
  relaunched ends bitwise equal to a run that was never interrupted."""
  npy = _write_npy(tmp_path / 'images.npy', n=N, size=32)
  env = subprocess_env()
  steps = 60
  ref = subprocess.run(_launch_args(npy, tmp_path / 'ref', steps, 4), cwd=REPO, env=env,
                       text=True, capture_output=True, timeout=400)
  assert ref.returncode == 0, ref.stderr[-3000:]
  work = tmp_path / 'killed'
  # Its own process group, killed whole as a preempted job is (its grain worker too).
  proc = subprocess.Popen(_launch_args(npy, work, steps, 4), cwd=REPO, env=env, text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
  deadline = time.time() + 300
  while not (work / 'checkpoints' / '4').is_dir() and proc.poll() is None:
    assert time.time() < deadline, 'no checkpoint after 300 s'
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  saved = sorted(int(s) for s in os.listdir(work / 'checkpoints') if s.isdigit())
  assert saved and saved[-1] < steps, f'the run finished before the kill: {saved}'
  again = subprocess.run(_launch_args(npy, work, steps, 4), cwd=REPO, env=env, text=True,
                         capture_output=True, timeout=400)
  assert again.returncode == 0, again.stderr[-3000:]
  assert 'Resuming' in again.stdout + again.stderr
  assert _max_diff(_final_params(str(work)), _final_params(str(tmp_path / 'ref'))) == 0.0


@pytest.mark.slow
def test_two_training_processes_match_one(tmp_path):
  """launch.py on 2 processes (jax.distributed, 1 device each) streaming their shards trains to
  the params of 1 process reading the same global batches."""
  npy = _write_npy(tmp_path / 'images.npy', n=N, size=32)
  env = subprocess_env()
  one = subprocess.run(_launch_args(npy, tmp_path / 'one', 6, 3, *KERNELS), cwd=REPO, env=env, text=True,
                       capture_output=True, timeout=400)
  assert one.returncode == 0, one.stderr[-3000:]
  address = f'localhost:{_free_port()}'
  procs = [subprocess.Popen(_launch_args(npy, tmp_path / 'two', 6, 3, *KERNELS,
                                         f'--coordinator_address={address}',
                                         '--num_processes=2', f'--process_id={i}'),
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for i in range(2)]
  for i, p in enumerate(procs):
    out, err = p.communicate(timeout=400)
    assert p.returncode == 0, f'process {i}:\n{out[-2000:]}\n{err[-3000:]}'
  assert {'process_0-of-2.json', 'process_1-of-2.json'} <= set(
      os.listdir(tmp_path / 'two' / 'checkpoints' / '6' / 'data'))
  assert _max_diff(_final_params(str(tmp_path / 'two')), _final_params(str(tmp_path / 'one'))) < 1e-5


def test_a_streamed_folder_run_skips_bad_files_says_fid_is_off_and_samples(tmp_path, capsys,
                                                                              monkeypatch):
  """experiments/folder.py:smoke streamed from a folder with one truncated file: it trains,
  counts the skipped file, says once that in-training FID is off (no Inception weights), and
  its checkpoint restores for sampling."""
  from image_folder_fixture import write_image_folder  # pylint: disable=g-import-not-at-top
  from gan_jax import run as run_lib, train  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation import inception_eval  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv('GAN_JAX_CACHE', str(tmp_path / 'cache'))
  monkeypatch.setattr(inception_eval, '_said_weights_missing', False)
  write_image_folder(str(tmp_path / 'images'), num_per_class=4)
  sys.path.insert(0, REPO)
  from experiments import folder as folder_config  # pylint: disable=g-import-not-at-top
  c = folder_config.get_config('smoke')
  c.data.dir, c.data.pipeline, c.data.skip_bad_files = str(tmp_path / 'images'), 'stream', True
  c.num_devices, c.eval_num, c.eval_every = 1, 8, 3
  state = train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert int(state.step) == c.num_steps
  out = capsys.readouterr()
  said = out.out + out.err
  assert said.count('in-training FID is off: no Inception weights') == 1
  assert 'unreadable files skipped so far' in said and 'truncated.png' in said
  _, shape, exp, restored = run_lib.restore_run(str(tmp_path / 'run'))
  assert shape == (32, 32, 3) and int(restored.step) == c.num_steps
  samples = exp.sample(restored, 5)
  assert samples.shape == (5, 32, 32, 3) and np.all(np.abs(samples) <= 1)
  # `gan_jax.evaluate` on an RGB run: the Inception FID against its training images, or a
  # UserError naming the conversion command when there are no weights.
  from gan_jax import evaluate  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError as _UserError  # pylint: disable=g-import-not-at-top
  from gan_jax.evaluation import inception  # pylint: disable=g-import-not-at-top
  with pytest.raises(_UserError, match='no Inception weights at .*convert_inception'):
    evaluate.evaluate_run(str(tmp_path / 'run'), 6)
  inception.save_weights(inception.random_weights(0), inception.default_weights_path())
  m = evaluate.evaluate_run(str(tmp_path / 'run'), 6)
  assert m['step'] == c.num_steps and np.isfinite(m['fd']) and m['fd'] > 0
  assert m['num_fake'] == m['num_real'] == 6


@pytest.mark.slow
def test_an_unreadable_file_stops_launch_with_its_name(tmp_path):
  """Without skip_bad_files, a truncated file read by a grain worker ends launch.py with one
  error line naming the file, and exit code 2."""
  from image_folder_fixture import write_image_folder  # pylint: disable=g-import-not-at-top
  meta = write_image_folder(str(tmp_path / 'images'), num_per_class=4)
  r = subprocess.run([sys.executable, 'launch.py', '--config=experiments/folder.py:smoke',
                      f'--workdir={tmp_path / "run"}', f'--config.data.dir={tmp_path / "images"}',
                      '--config.data.pipeline=stream', '--config.data.workers=1'],
                     cwd=REPO, env=subprocess_env(), text=True, capture_output=True, timeout=300)
  errors = [line for line in r.stderr.splitlines() if line.startswith('error:')]
  assert r.returncode == 2 and len(errors) == 1, r.stderr[-3000:]
  assert meta['truncated'] in errors[0] and 'skip_bad_files=True' in errors[0]
