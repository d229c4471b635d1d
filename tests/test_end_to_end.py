"""launch.py and gan_jax.sample as a user runs them: subprocesses, real files."""

import glob
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, has_real_mnist, shared_datasets_dir, subprocess_env, write_idx_fixture

pytestmark = pytest.mark.slow


def _run(args, **kw):
  return subprocess.run([sys.executable] + args, cwd=REPO, env=subprocess_env(), text=True,
                        capture_output=True, timeout=600, **kw)


def _tb_scalar_tags(tb_dir):
  """Tags in TensorBoard event files, read with the TFRecord framing + tensorboardX protos."""
  from tensorboardX.proto import event_pb2
  tags = set()
  for path in glob.glob(os.path.join(tb_dir, 'events.out.tfevents.*')):
    with open(path, 'rb') as f:
      buf = f.read()
    pos = 0
    while pos < len(buf):
      (n,) = struct.unpack('<Q', buf[pos:pos + 8])
      event = event_pb2.Event.FromString(buf[pos + 12:pos + 12 + n])
      pos += 12 + n + 4
      for v in event.summary.value:
        tags.add((v.tag, v.WhichOneof('value')))
  return tags


@pytest.fixture(scope='module')
def mnist_dir(tmp_path_factory):
  """The real MNIST when present (CI), else a small IDX fixture."""
  if has_real_mnist():
    return os.path.join(shared_datasets_dir(), 'mnist')
  return write_idx_fixture(str(tmp_path_factory.mktemp('mnist')))


def test_mnist_smoke_trains_resumes_and_samples(tmp_path, mnist_dir):
  wd = str(tmp_path / 'run')
  base = ['launch.py', '--config=experiments/mnist.py:smoke', f'--workdir={wd}',
          f'--config.data.dir={mnist_dir}', '--config.eval_num=200']
  r = _run(base)
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'finished 6 steps' in r.stdout
  assert sorted(os.listdir(os.path.join(wd, 'checkpoints'))) == ['3', '6']
  for name in ('step_0000003.png', 'step_0000006.png', 'final.png'):
    assert os.path.getsize(os.path.join(wd, 'samples', name)) > 500
  all_rows = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  rows = [row for row in all_rows if 'loss_D' in row]
  assert [row['step'] for row in rows] == [2, 4, 6]
  # In-training evaluation: FD and score on eval_num samples at each eval step, and the best
  # checkpoint by FD kept apart from the latest ones.
  evals = [row for row in all_rows if 'eval/fd' in row]
  assert [row['step'] for row in evals] == [3, 6]
  assert all(row['eval/fd'] > 0 and row['eval/score'] >= 1 and row['eval/num'] == 200
             for row in evals)
  best = min(evals, key=lambda row: row['eval/fd'])['step']
  assert os.listdir(os.path.join(wd, 'checkpoints_best')) == [str(best)]
  for key in ('loss_D', 'loss_G', 'D_real', 'D_fake', 'grad_norm_D', 'grad_norm_G'):
    assert all(np.isfinite(row[key]) for row in rows), key
  tags = _tb_scalar_tags(os.path.join(wd, 'tb'))
  assert ('loss_D', 'simple_value') in tags and ('samples', 'image') in tags
  assert 'step' in r.stderr  # the progress bar

  # Same command again: finished, exit 0, nothing retrained.
  r = _run(base)
  assert r.returncode == 0 and 'already finished at step 6' in r.stdout, r.stderr[-2000:]

  # A longer run in the same workdir resumes from step 6 instead of restarting.
  r = _run(base + ['--config.num_steps=8', '--config.allow_config_change=True'])
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'Resuming mnist from step 6' in r.stdout
  steps = [json.loads(l)['step'] for l in open(os.path.join(wd, 'metrics.jsonl'))
           if 'loss_D' in l]
  assert steps == [2, 4, 6, 8]

  # A changed config without permission: one line, exit 2, nothing touched.
  before = open(os.path.join(wd, 'config.json')).read()
  r = _run(base + ['--config.optim.g_lr=0.002'])
  assert r.returncode == 2
  assert r.stderr.strip().count('\n') == 0 and 'optim.g_lr' in r.stderr
  assert open(os.path.join(wd, 'config.json')).read() == before

  # Samples: uint8 [N, 28, 28] under 'samples', and a PNG grid.
  out, png = str(tmp_path / 's.npz'), str(tmp_path / 's.png')
  r = _run(['-m', 'gan_jax.sample', f'--workdir={wd}', '--num=130', f'--out={out}', f'--grid={png}'])
  assert r.returncode == 0, r.stderr[-3000:]
  s = np.load(out)['samples']
  assert s.shape == (130, 28, 28) and s.dtype == np.uint8 and s.std() > 0
  assert os.path.getsize(png) > 1000

  # Evaluate the run: all metrics as the last stdout line (EMA G by default).
  r = _run(['-m', 'gan_jax.evaluate', f'--workdir={wd}', '--num=300'])
  assert r.returncode == 0, r.stderr[-3000:]
  m = json.loads(r.stdout.strip().splitlines()[-1])
  assert m['step'] == 8 and m['ema'] is True and m['num_fake'] == 300
  for key in ('fd', 'score', 'kid', 'kid_std', 'precision', 'recall', 'density', 'coverage',
              'classes_covered', 'class_histogram'):
    assert key in m, key


def test_typo_in_override_fails(tmp_path):
  r = _run(['launch.py', '--config=experiments/toy2d.py:smoke', f'--workdir={tmp_path}/w',
            '--config.num_stepz=3'])
  assert r.returncode != 0 and 'num_stepz' in r.stderr
  assert not os.path.exists(tmp_path / 'w')


def test_toy2d_default_writes_scatter_plot(tmp_path):
  wd = str(tmp_path / 'toy')
  r = _run(['launch.py', '--config=experiments/toy2d.py:grid,smoke', f'--workdir={wd}'])
  assert r.returncode == 0, r.stderr[-3000:]
  from PIL import Image
  img = np.asarray(Image.open(os.path.join(wd, 'samples', 'final.png')))
  assert img.ndim == 3 and img.shape[0] >= 300  # a matplotlib figure, not a tiny grid
  r = _run(['-m', 'gan_jax.sample', f'--workdir={wd}', '--num=50', f'--out={tmp_path}/p.npz'])
  assert r.returncode == 0, r.stderr[-2000:]
  pts = np.load(f'{tmp_path}/p.npz')['samples']
  assert pts.shape == (50, 2) and pts.dtype == np.float32


@pytest.mark.parametrize('args,match', [
    (['--num=0', '--out=x.npz'], '--num=0 must be >= 1'),
    (['--num=5', '--out=/nonexistent_dir/x.npz'], 'does not exist'),
])
def test_sample_cli_bad_input(tmp_path, args, match):
  r = _run(['-m', 'gan_jax.sample', f'--workdir={tmp_path}'] + args)
  assert r.returncode == 2 and match in r.stderr and 'Traceback' not in r.stderr


def test_sample_cli_missing_run(tmp_path):
  r = _run(['-m', 'gan_jax.sample', f'--workdir={tmp_path}', '--out=x.npz'])
  assert r.returncode == 2 and 'holds no run' in r.stderr
