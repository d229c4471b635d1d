"""The trainer in-process: resume equals an uninterrupted run, bit for bit; every train step
draws its own real batch and latents (spied on inside the compiled step)."""

import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, write_idx_fixture
from test_configs import _load
from gan_jax import checkpointing, steps, train
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


# ----------------------------------------------------------------------------------------------
# Fresh randomness every step: the real batches and the latents of consecutive train steps.


class _DrawSpy:
  """Records every real batch a train step draws and every latent batch it samples.

  ``steps.sample_latents`` (the latents of the D and the G step) is replaced by a wrapper, and
  ``wrap(draw)`` wraps a data source's draw; both hand their output to an ordered
  ``jax.debug.callback``, so they record from inside compiled steps too, in program order (read
  the lists after ``jax.effects_barrier()``)."""

  def __init__(self, monkeypatch):
    self.batches, self.latents = [], []
    sample_latents = steps.sample_latents

    def spy_latents(key, batch_size, latent_dim, axis_name=None):
      z = sample_latents(key, batch_size, latent_dim, axis_name)
      jax.debug.callback(lambda v: self.latents.append(np.array(v)), z, ordered=True)
      return z

    monkeypatch.setattr(steps, 'sample_latents', spy_latents)

  def wrap(self, draw):
    def spy_draw(arrays, key, n):
      batch = draw(arrays, key, n)
      jax.debug.callback(lambda v: self.batches.append(np.array(v)), batch['image'],
                         ordered=True)
      return batch
    return spy_draw

  def spy_on_the_trainer(self, monkeypatch):
    """Wraps the draw that ``Experiment.train_step`` passes to ``steps.train_step_on_data``."""
    on_data = steps.train_step_on_data

    def spy_on_data(*args, draw, **kwargs):
      return on_data(*args, draw=self.wrap(draw), **kwargs)

    monkeypatch.setattr(steps, 'train_step_on_data', spy_on_data)

  def recorded(self):
    jax.effects_barrier()
    return self.batches, self.latents


def _all_different(arrays):
  for i in range(len(arrays)):
    for j in range(i):
      assert not np.array_equal(arrays[i], arrays[j]), f'draws {j} and {i} are equal'


def _spy_config(num_steps):
  """The toy2d smoke run, small nets, on one device (the spies' callbacks then run once)."""
  c = _toy(num_steps)
  c.num_devices = 1
  c.batch_size = 32
  c.model.g_hidden = (16,)
  c.model.d_hidden = (16,)
  return c


def test_train_step_on_data_draws_new_data_and_latents_every_step(monkeypatch):
  """``steps.train_step_on_data`` keys its draws by ``fold_in(train_key, state.step)``:
  consecutive steps draw different real batches and different latents (D's and G's), and a
  step repeated from the same state draws the same ones (what makes resume exact)."""
  spy = _DrawSpy(monkeypatch)
  exp = run_lib.Experiment(_spy_config(3))
  cfg = exp.cfg
  assert cfg.n_critic == 1
  step = jax.jit(lambda state, arrays, key: steps.train_step_on_data(
      state, arrays, key, cfg, draw=spy.wrap(exp.source.draw), batch_size=32, data_shape=(2,)))
  state, arrays = exp.init_state(), exp.device_arrays()
  key = jax.random.fold_in(exp.root_key, steps.RNG_TRAIN)
  states = [state]
  for _ in range(3):
    states.append(step(states[-1], arrays, key)[0])
  batches, latents = spy.recorded()
  assert [b.shape for b in batches] == [(32, 2)] * 3
  assert [z.shape for z in latents] == [(32, 2)] * 6  # the D step's, then the G step's
  _all_different(batches)
  _all_different(latents)
  step(states[1], arrays, key)  # step 1 again: the same draws as the first time
  batches, latents = spy.recorded()
  np.testing.assert_array_equal(batches[3], batches[1])
  np.testing.assert_array_equal(latents[6], latents[2])
  np.testing.assert_array_equal(latents[7], latents[3])


def test_experiment_train_step_draws_new_data_and_latents_every_step(monkeypatch):
  """``Experiment.train_step`` (what the trainer compiles) passes the run's draw and a per-step
  key: two consecutive steps, two different real batches and four different latent batches."""
  spy = _DrawSpy(monkeypatch)
  spy.spy_on_the_trainer(monkeypatch)
  exp = run_lib.Experiment(_spy_config(2))
  step = jax.jit(exp.train_step)
  state, arrays = exp.init_state(), exp.device_arrays()
  key = jax.random.fold_in(exp.root_key, steps.RNG_TRAIN)
  state, _ = step(state, arrays, key)
  state, _ = step(state, arrays, key)
  assert int(state.step) == 2
  batches, latents = spy.recorded()
  assert len(batches) == 2 and len(latents) == 4
  _all_different(batches)
  _all_different(latents)


def test_the_training_loop_draws_new_data_and_latents_every_step(tmp_path, monkeypatch):
  """Through ``train.train_and_evaluate`` (its compiled step and its loop): 4 steps, 4 different
  real batches and 8 different latent batches."""
  spy = _DrawSpy(monkeypatch)
  spy.spy_on_the_trainer(monkeypatch)
  state = train.train_and_evaluate(_spy_config(4), str(tmp_path / 'run'))
  assert int(state.step) == 4
  batches, latents = spy.recorded()
  assert [b.shape for b in batches] == [(32, 2)] * 4
  assert [z.shape for z in latents] == [(32, 2)] * 8
  _all_different(batches)
  _all_different(latents)
