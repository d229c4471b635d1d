"""Sampling uses the EMA generator, and ``--no-ema`` / ``use_ema=False`` the live one.

A 6-step smoke run is checkpointed once more with EMA params that are a *different* G (another
initialisation), so every output tells which params made it. The expected outputs apply the G
model to the EMA (or live) params directly, never through the sampling code under test.
"""

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, subprocess_env, write_idx_fixture
from test_configs import _load
from gan_jax import checkpointing, hooks, images, progress, sample, train, workdir
from gan_jax import run as run_lib

LATENT = 100  # experiments/mnist_mlp.py's latent size
STEP = 100    # the checkpoint step that holds the state with the separate EMA


def apply_g(exp, state, params, z):
  """G(z) in eval mode from ``params`` (``state.ema_params`` or ``state.g.params``), by applying
  the run's G model directly: float32 ``[N, 28, 28, 1]`` in [-1, 1]."""
  variables = {'params': params}
  if state.g.batch_stats:
    variables['batch_stats'] = state.g.batch_stats
  return np.asarray(jax.jit(lambda v, z: exp.g_model.apply(v, z, train=False))(variables, z))


@pytest.fixture(scope='module')
def ema_run(tmp_path_factory):
  """A 2-step run like test_sample_modes' (MLP G, IDX fixture, one device), with a checkpoint
  at step 100 whose EMA params are a freshly initialised G: far from the live G's params."""
  root = tmp_path_factory.mktemp('sample_ema')
  c = _load(os.path.join(REPO, 'experiments', 'mnist_mlp.py'), 'smoke,paper')
  c.data.dir = write_idx_fixture(str(root / 'data'), n_train=64, n_test=16)
  c.data.source = 'idx'
  c.num_devices = 1
  c.batch_size = 16
  c.model.g_hidden = (64,)
  c.model.d_hidden = (32,)
  c.num_steps = c.eval_every = c.checkpoint_every = 2
  wd = str(root / 'run')
  train.train_and_evaluate(c, wd)
  _, _, exp, state = run_lib.restore_run(wd)
  assert state.ema_params is not None and c.model.latent_dim == LATENT
  other_g = exp.create_state(jax.random.key(99)).g.params
  ckpt = checkpointing.Checkpoints(workdir.path(wd, workdir.CHECKPOINTS))
  ckpt.save(STEP, state.replace(ema_params=other_g))
  ckpt.close()
  _, _, exp, state = run_lib.restore_run(wd)  # the latest checkpoint: step 100
  for a, b in zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(other_g)):
    np.testing.assert_array_equal(a, b)
  return {'workdir': wd, 'exp': exp, 'state': state}


def _ema_and_live(ema_run, z):
  exp, state = ema_run['exp'], ema_run['state']
  ema = apply_g(exp, state, state.ema_params, z)
  live = apply_g(exp, state, state.g.params, z)
  # The two generators give clearly different images (tens of grey levels on average).
  assert np.mean(np.abs(images.to_uint8(ema).astype(int) - images.to_uint8(live))) > 10
  return ema, live


def test_generate_and_experiment_sample_use_the_ema(ema_run):
  exp, state = ema_run['exp'], ema_run['state']
  z = jax.random.normal(jax.random.key(0), (6, LATENT))
  ema, live = _ema_and_live(ema_run, z)
  np.testing.assert_allclose(exp.generate_fn(state, z), ema, atol=1e-4)
  np.testing.assert_allclose(exp.generate_fn(state, z, use_ema=False), live, atol=1e-4)
  key = jax.random.key(3)
  z0 = jax.random.normal(jax.random.fold_in(key, 0), (6, LATENT))  # Experiment.sample's chunk 0
  ema, live = _ema_and_live(ema_run, z0)
  np.testing.assert_allclose(exp.sample(state, 6, key=key), ema, atol=1e-4)
  np.testing.assert_allclose(exp.sample(state, 6, key=key, use_ema=False), live, atol=1e-4)


def test_training_picture_uses_the_ema(ema_run, tmp_path):
  """``hooks.write_samples``, the fixed-latent grid written during training, shows the EMA G."""
  exp, state = ema_run['exp'], ema_run['state']
  z, labels, ncol = exp.grid_inputs(exp.config.num_grid)
  assert labels is None
  ema, live = _ema_and_live(ema_run, z)
  pic, _ = hooks.write_samples(exp, state, str(tmp_path / 'grid.png'), STEP)
  cells = images.ungrid(pic, len(z), (28, 28), ncol=ncol).astype(int)
  np.testing.assert_allclose(cells, images.to_uint8(ema), atol=1)
  assert np.mean(np.abs(cells - images.to_uint8(live))) > 10


def test_interpolation_picture_uses_the_ema(ema_run):
  exp, state = ema_run['exp'], ema_run['state']
  key = jax.random.key(5)
  pic = sample.interpolation_picture(exp, state, rows=2, steps=3, key=key)
  cells = images.ungrid(pic, 6, (28, 28), ncol=3).reshape(2, 3, 28, 28, 1).astype(int)
  k0, _ = jax.random.split(key)
  z0 = jax.random.normal(k0, (2, 1, LATENT))[:, 0]  # the rows' first endpoints
  ema, _ = _ema_and_live(ema_run, z0)
  np.testing.assert_allclose(cells[:, 0], images.to_uint8(ema), atol=1)


@pytest.mark.parametrize('no_ema', [False, True], ids=['ema', 'no_ema'])
def test_sample_cli_uses_the_ema_unless_no_ema(ema_run, tmp_path, no_ema):
  """``python -m gan_jax.sample --num 5 --out --grid --seed 2`` writes G_ema(z) (with
  ``--no-ema`` G(z)) for the latents z of seed 2, to the npz and to the PNG grid."""
  out, png = str(tmp_path / 's.npz'), str(tmp_path / 's.png')
  argv = [sys.executable, '-m', 'gan_jax.sample', f'--workdir={ema_run["workdir"]}', '--num=5',
          f'--out={out}', f'--grid={png}', '--seed=2'] + (['--no-ema'] if no_ema else [])
  r = subprocess.run(argv, cwd=str(tmp_path), env=subprocess_env(), text=True,
                     capture_output=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
  z = jax.random.normal(jax.random.fold_in(jax.random.key(2), 0), (5, LATENT))
  ema, live = _ema_and_live(ema_run, z)
  want, other = (live, ema) if no_ema else (ema, live)
  want, other = images.to_uint8(want)[..., 0].astype(int), images.to_uint8(other)[..., 0]
  got = np.load(out)['samples'].astype(int)
  assert got.shape == (5, 28, 28)
  np.testing.assert_allclose(got, want, atol=1)  # one grey level: another process's rounding
  assert np.mean(np.abs(got - other)) > 10
  cells = images.ungrid(np.asarray(Image.open(png)), 5, (28, 28), scale=progress.SCALE)
  np.testing.assert_allclose(cells[..., 0].astype(int), want, atol=1)
