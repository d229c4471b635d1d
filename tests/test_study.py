"""The mode-collapse study's presets: each resolves to a valid config; one short vmapped run."""

import importlib.util
import os

import numpy as np
import pytest

from conftest import REPO
from gan_jax import config_base, study
from gan_jax import run as run_lib
from gan_jax.errors import UserError


def _grid(variant='grid'):
  path = os.path.join(REPO, 'experiments', 'toy2d.py')
  spec = importlib.util.spec_from_file_location('toy2d', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def test_grid_variant_trains_longer_than_the_ring_and_smoke_still_wins():
  assert _grid('').num_steps == 5000
  assert _grid().num_steps == 16000
  assert _grid('grid,smoke').num_steps == _grid('smoke,grid').num_steps <= 10


def test_r1_variant_is_the_sharp_preset():
  c, preset = _grid('grid,r1'), study.preset_config(_grid(), 'ns_r1_sharp')
  assert (c.loss, c.penalty, c.penalty_weight, c.num_steps) == (
      preset.loss, preset.penalty, preset.penalty_weight, preset.num_steps)


@pytest.mark.parametrize('name', sorted(study.PRESETS))
def test_every_preset_is_a_valid_config(name):
  config_base.validate_config(study.preset_config(_grid(), name))


def test_wgan_gp_preset_is_the_gulrajani_recipe_at_half_the_steps():
  c = study.preset_config(_grid(), 'wgan_gp')
  assert (c.loss, c.n_critic, c.penalty_weight) == ('wgan_gp', 5, 10.0)
  assert (c.optim.g_lr, c.optim.d_lr, c.optim.b1, c.optim.b2) == (1e-4, 1e-4, 0.5, 0.9)
  assert c.num_steps == 8000
  assert study.preset_overrides(_grid(), 'wgan_gp')['num_steps'] == 8000  # JSON-ready


def test_plain_loss_names_work_and_unknown_names_are_listed():
  assert study.preset_config(_grid(), 'rsgan').loss == 'rsgan'
  with pytest.raises(UserError, match='neither a preset.*ns_r1_sharp'):
    study.preset_config(_grid(), 'nonsense')


def test_run_preset_trains_every_seed_and_measures_it():
  c = _grid()
  c.num_steps = 1  # one compiled chunk
  c = study.preset_config(c, 'ns_r1_sharp')
  per_seed, samples, info = study.run_preset(c, seeds=2, num_samples=100)
  assert samples.shape == (2, 100, 2) and np.all(np.isfinite(samples))
  assert not np.allclose(samples[0], samples[1])  # the seeds differ
  assert [m['num_modes'] for m in per_seed] == [25, 25]
  assert info['centers'].shape == (25, 2)
