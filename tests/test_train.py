"""The trainer in-process: resume equals an uninterrupted run, bit for bit."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, write_idx_fixture
from test_configs import _load
from gan_jax import checkpointing, train
from gan_jax import run as run_lib
from gan_jax.errors import TrainingDiverged


def _toy(steps):
  c = _load(os.path.join(REPO, 'experiments', 'toy2d.py'), 'smoke')
  c.num_steps = steps
  c.checkpoint_every = 3
  c.eval_every = 100
  c.num_grid = 64
  return c


def test_resume_matches_uninterrupted_run(tmp_path):
  full = train.train_and_evaluate(_toy(8), str(tmp_path / 'full'))
  train.train_and_evaluate(_toy(5), str(tmp_path / 'split'))  # checkpoints at 3 and 5
  c = _toy(8)
  c.allow_config_change = True
  resumed = train.train_and_evaluate(c, str(tmp_path / 'split'))
  assert int(resumed.step) == int(full.step) == 8
  # Leaves, not trees: the two states hold different (equal) optax closures as static fields.
  chex.assert_trees_all_equal(jax.tree.leaves(jax.device_get(resumed)),
                              jax.tree.leaves(jax.device_get(full)))
  assert os.path.exists(tmp_path / 'split' / 'samples' / 'final.png')


def test_dcgan_trains_on_idx_fixture_with_8_devices(tmp_path):
  """The sharded path: 8 fake devices, batch 16 split 2 per device, DCGAN with BatchNorm."""
  assert jax.device_count() == 8
  c = _load(os.path.join(REPO, 'experiments', 'mnist.py'), 'smoke')
  c.data.dir = write_idx_fixture(str(tmp_path / 'data'))
  c.data.source = 'idx'
  c.batch_size = 16
  c.model.ngf = 8
  c.model.ndf = 8
  state = train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert int(state.step) == c.num_steps
  leaves = jax.tree.leaves(jax.device_get(state))
  assert all(np.all(np.isfinite(x)) for x in leaves if np.issubdtype(np.asarray(x).dtype, np.floating))
  with pytest.raises(Exception, match='not divisible by the 8 devices'):
    c.batch_size = 12
    run_lib.Experiment(c)


def test_a_state_poisoned_by_its_update_is_never_saved(tmp_path, monkeypatch):
  """An update that overflows the weights leaves the metrics it was computed from finite (they
  come from before the update), so the metric watch cannot see it: the save must check the state
  itself. Here the step at train step 4 writes NaN into G's params while reporting finite metrics."""
  real_step = run_lib.Experiment.train_step

  def poisoning_step(self, state, arrays, train_key):
    new, metrics = real_step(self, state, arrays, train_key)
    poison = new.g.step == 4
    g_params = jax.tree.map(lambda p: jnp.where(poison, jnp.nan, p), new.g.params)
    return new.replace(g=new.g.replace(params=g_params)), metrics

  monkeypatch.setattr(run_lib.Experiment, 'train_step', poisoning_step)
  c = _toy(8)
  c.checkpoint_every = 1
  wd = str(tmp_path / 'run')
  with pytest.raises(TrainingDiverged, match=r'state at step 4 holds non-finite values.*last good '
                     r'checkpoint: step 3'):
    train.train_and_evaluate(c, wd)
  ckpt = checkpointing.Checkpoints(os.path.join(wd, 'checkpoints'), create=False)
  assert ckpt.all_steps() == [1, 2, 3]
  for s in ckpt.all_steps():
    state = ckpt.restore(run_lib.Experiment(c).abstract_state(), s)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(jax.device_get(state))
               if np.issubdtype(np.asarray(x).dtype, np.floating))
  ckpt.close()
