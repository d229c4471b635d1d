"""``python -m gan_jax.seeds``: N seeds trained, evaluated and tabulated as mean ± sd."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, subprocess_env


def _seeds(args):
  return subprocess.run([sys.executable, '-m', 'gan_jax.seeds'] + args, cwd=REPO,
                        env=subprocess_env(), text=True, capture_output=True, timeout=600)


@pytest.mark.slow
def test_two_seeds_of_the_toy_run_give_a_table(tmp_path):
  root = str(tmp_path / 'seeds')
  base = ['--config=experiments/toy2d.py:smoke', '--seeds=2', f'--root={root}', '--num=500']
  r = _seeds(base + ['--only=1'])  # one seed, as one job of a cluster array would
  assert r.returncode == 0, r.stderr[-3000:]
  assert os.listdir(root) == ['seed1']
  r = _seeds(base)  # trains seed 0, keeps seed 1, evaluates both
  assert r.returncode == 0, r.stderr[-3000:]
  assert 'run already finished at step 6' in r.stdout  # seed 1 was not retrained
  out = json.loads(r.stdout.strip().splitlines()[-1])
  assert out['seeds'] == 2 and 'modes_covered' in out and 'modes_covered_sd' in out
  table = open(os.path.join(root, 'seeds.md')).read()
  assert '| modes_covered |' in table and '± ' in table
  per_seed = json.load(open(os.path.join(root, 'seeds.json')))['per_seed']
  assert json.load(open(os.path.join(root, 'seed1', 'config.json')))['seed'] == 1
  assert sorted(per_seed) == ['0', '1']


def test_bad_seed_flags():
  r = _seeds(['--config=experiments/toy2d.py:smoke', '--seeds=2', '--only=2'])
  assert r.returncode == 2 and r.stderr.strip() == 'error: --only=2 must lie in [0, 2)'
