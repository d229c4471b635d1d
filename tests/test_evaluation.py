"""The evaluation suite on real MNIST: sanity orderings, the CLI, and in-training eval.

Uses the packaged MNIST classifier (gan_jax/evaluation/weights/, made by
``python -m gan_jax.evaluation.train_classifier --dataset mnist``) and N = 2000 to stay fast;
the orderings asserted here are what any honest metric must show.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, needs_mnist, shared_datasets_dir, subprocess_env
from gan_jax.evaluation import classifier, suite
from gan_jax.errors import UserError

N = 1000
pytestmark = needs_mnist


@pytest.fixture(scope='module')
def cfg():
  return suite.data_config('mnist', source='idx',
                           directory=os.path.join(shared_datasets_dir(), 'mnist'))


@pytest.fixture(scope='module')
def ev(cfg):
  return suite.Evaluator.for_dataset('mnist', N, cfg)


@pytest.fixture(scope='module')
def train_set(cfg):
  return suite.load_images(cfg, 'train', N, seed=1, with_labels=True)


@pytest.fixture(scope='module')
def ceiling(ev, train_set):
  return ev(train_set[0], kid_subsets=20)


@pytest.mark.parametrize('dataset,target', [('mnist', 0.993), ('fashion_mnist', 0.92)])
def test_packaged_classifier_accuracy_is_recorded(dataset, target):
  net = classifier.load(dataset)
  assert net.info['test_accuracy'] >= target, net.info
  assert net.info['num_test'] == 10000 and net.info['dataset'] == dataset


def test_real_data_is_the_ceiling_and_noise_the_floor(ev, ceiling):
  noise = ev(np.random.RandomState(0).uniform(-1, 1, (N, 28, 28, 1)).astype(np.float32),
             kid_subsets=20)
  print(f'\nceiling {json.dumps({k: ceiling[k] for k in ("fd", "score", "kid", "precision", "recall", "coverage")})}'
        f'\nnoise   {json.dumps({k: noise[k] for k in ("fd", "score", "kid", "precision", "recall", "coverage")})}')
  assert ceiling['fd'] * 20 < noise['fd'] and ceiling['kid'] * 20 < noise['kid']
  assert ceiling['score'] > 9.0 > noise['score']
  for k in ('precision', 'recall', 'density', 'coverage'):
    assert ceiling[k] > noise[k] + 0.5, k
  assert ceiling['classes_covered'] == 10
  assert ceiling['num_real'] == ceiling['num_fake'] == N


def _blur(x, r):
  if r == 0:
    return x
  k = 2 * r + 1
  p = np.pad(x, ((0, 0), (r, r), (r, r), (0, 0)), mode='edge')
  out = sum(p[:, i:i + 28, j:j + 28] for i in range(k) for j in range(k)) / k ** 2
  return out.astype(np.float32)


@pytest.mark.parametrize('kind,levels', [('noise', (0.0, 0.2, 0.5, 1.0)), ('blur', (0, 1, 2, 3))])
def test_degradation_scores_monotonically_worse(ev, train_set, kind, levels):
  x = train_set[0]
  rng = np.random.RandomState(0)
  results = []
  for level in levels:
    y = (np.clip(x + level * rng.randn(*x.shape), -1, 1).astype(np.float32) if kind == 'noise'
         else _blur(x, level))
    results.append(ev(y, kid_subsets=10))
  fds = [r['fd'] for r in results]
  print(f'\n{kind} {levels}: FD {[round(f, 2) for f in fds]}, KID '
        f'{[round(r["kid"], 4) for r in results]}, precision '
        f'{[round(r["precision"], 3) for r in results]}')
  assert all(a < b for a, b in zip(fds, fds[1:])), fds
  kids = [r['kid'] for r in results]
  assert all(a < b for a, b in zip(kids, kids[1:])), kids
  # Recall and coverage fall with either degradation. Precision need not: blurred digits sit in
  # a compact region inside large real k-NN balls and score *higher* precision than real data,
  # which is why precision is never reported alone.
  for k in ('recall', 'coverage'):
    assert results[-1][k] < results[0][k] - 0.3, k


def test_dropping_classes_shows_in_recall_coverage_and_classes(ev, train_set, ceiling):
  x, y = train_set
  rows = []
  for kept in (10, 9, 8, 7, 6, 5):
    sel = x[y < kept]
    sel = sel[np.random.RandomState(kept).choice(len(sel), N, replace=True)]
    rows.append(ev(sel, kid_subsets=10))
  print('\nclasses kept 10..5: recall', [round(r['recall'], 3) for r in rows], 'coverage',
        [round(r['coverage'], 3) for r in rows], 'precision',
        [round(r['precision'], 3) for r in rows])
  assert [r['classes_covered'] for r in rows] == [10, 9, 8, 7, 6, 5]
  cov = [r['coverage'] for r in rows]
  assert all(a > b for a, b in zip(cov, cov[1:])), cov
  half = rows[-1]
  assert half['recall'] < ceiling['recall'] - 0.25 and half['coverage'] < ceiling['coverage'] - 0.3
  assert half['precision'] > 0.9 * ceiling['precision']  # precision alone would miss it
  assert half['fd'] > 10 * ceiling['fd']


def _evaluate(args, env=None):
  return subprocess.run([sys.executable, '-m', 'gan_jax.evaluate'] + args, cwd=REPO,
                        env=env or subprocess_env(GAN_JAX_DATA_DIR=shared_datasets_dir()),
                        text=True, capture_output=True, timeout=600)


@pytest.mark.slow
def test_cli_samples_file_and_reference(tmp_path, cfg):
  x = suite.load_images(cfg, 'train', 500, seed=3)
  path = str(tmp_path / 's.npz')
  np.savez(path, samples=np.round((x[..., 0] + 1) * 127.5).astype(np.uint8))
  r = _evaluate(['--dataset=mnist', f'--samples={path}', '--num=500'])
  assert r.returncode == 0, r.stderr[-2000:]
  m = json.loads(r.stdout.strip().splitlines()[-1])
  assert m['num_fake'] == m['num_real'] == 500 and m['classes_covered'] == 10
  r = _evaluate(['--dataset=mnist', '--reference', '--num=500'])
  assert r.returncode == 0, r.stderr[-2000:]
  ref = json.loads(r.stdout.strip().splitlines()[-1])
  assert 'ceiling (train vs test)' in r.stdout and 'noise floor' in r.stdout
  # Real images saved as uint8 score like the ceiling (FD is biased upwards at small N, so
  # compare at the same N), and far from the noise floor.
  assert abs(m['fd'] - ref['ceiling']['fd']) < 0.5 * ref['ceiling']['fd']
  assert ref['ceiling']['fd'] < 0.05 * ref['noise']['fd']


@pytest.mark.parametrize('args,match', [
    (['--samples=S'], '--samples needs --dataset'),
    (['--dataset=kmnist', '--samples=S'], "no feature classifier for dataset 'kmnist'"),
    (['--dataset=mnist', '--samples=S32'], 'the mnist classifier takes (28, 28, 1)'),
    (['--dataset=mnist'], 'pass exactly one of --workdir'),
    (['--dataset=mnist', '--reference', '--num=1'], '--num=1 must be >= 2'),
])
def test_cli_bad_input(args, match, tmp_path):
  np.savez(tmp_path / 's.npz', samples=np.zeros((4, 28, 28), np.uint8))
  np.savez(tmp_path / 's32.npz', samples=np.zeros((4, 32, 32), np.uint8))
  args = [a.replace('S32', str(tmp_path / 's32.npz')).replace('=S', f'={tmp_path / "s.npz"}')
          for a in args]
  r = _evaluate(args)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2 and len(lines) == 1 and match in lines[0], r.stderr[-2000:]


def test_missing_classifier_names_the_command(monkeypatch, tmp_path):
  monkeypatch.setenv(classifier.CACHE_ENV, str(tmp_path))
  with pytest.raises(UserError, match='python -m gan_jax.evaluation.train_classifier --dataset '
                                      'kmnist'):
    classifier.load('kmnist')
