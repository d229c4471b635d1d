"""Every experiment config: loads, has the shared top-level names, variants, overrides, checks."""

import contextlib
import glob
import importlib.util
import json
import os
import time

import numpy as np
import pytest

from conftest import REPO, write_idx_fixture
from gan_jax import config_base, train, workdir
from gan_jax.data import names
from gan_jax.errors import ConfigError

CONFIGS = sorted(glob.glob(os.path.join(REPO, 'experiments', '*.py')))


def _load(path, variant=''):
  spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert module.__doc__ and 'launch.py' in module.__doc__, f'{path}: docstring must give the command'
  return module.get_config(variant) if variant else module.get_config()


@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_config_is_valid_and_has_smoke_variant(path):
  c = _load(path)
  for key in ('num_steps', 'batch_size', 'seed', 'name'):
    assert key in c, f'{path} lacks config.{key}'
  config_base.validate_config(c)
  s = _load(path, 'smoke')
  config_base.validate_config(s)
  assert s.num_steps <= 10 < c.num_steps
  with pytest.raises(ValueError, match='unknown variant'):
    _load(path, 'nonsense')


def test_toy2d_variants_choose_the_mixture():
  path = os.path.join(REPO, 'experiments', 'toy2d.py')
  assert _load(path).data.name == 'ring'
  assert _load(path, 'grid').data.name == 'grid'
  assert _load(path, 'grid,smoke').num_steps <= 10


@pytest.mark.parametrize('key,value,match', [
    ('num_steps', 0, r'config.num_steps=0 must be an integer >= 1'),
    ('batch_size', -4, r'config.batch_size=-4'),
    ('n_critic', 0, r'config.n_critic=0'),
    ('ema_decay', 1.0, r'config.ema_decay=1.0 must lie in \[0, 1\)'),
    ('loss', 'wgann', r"config.loss='wgann'.*valid: hinge, lsgan, minimax, ns, ragan, rsgan, wgan, wgan_gp"),
])
def test_bad_values_are_named(key, value, match):
  c = _load(os.path.join(REPO, 'experiments', 'mnist.py'))
  c[key] = value
  with pytest.raises(ConfigError, match=match):
    config_base.validate_config(c)


def test_config_change_is_refused_with_the_differing_keys(tmp_path):
  c = _load(os.path.join(REPO, 'experiments', 'toy2d.py'))
  path = str(tmp_path / 'config.json')
  assert workdir.check_config_matches(c, path)  # no file yet: must be written
  workdir.write_json(path, c.to_dict())
  assert not workdir.check_config_matches(c, path)  # same config: fine, nothing to write
  c.optim.g_lr = 5e-4
  c.num_steps = 7
  with pytest.raises(ConfigError, match=r'2 key\(s\).*num_steps: 5000 -> 7.*optim.g_lr'):
    workdir.check_config_matches(c, path)
  c.allow_config_change = True
  workdir.check_config_matches(c, path)


def test_a_key_added_later_at_its_default_is_no_change(tmp_path):
  """A run saved before a key existed (here compute_dtype; model.upconv was one until the
  kernels setting replaced it) resumes when the new config has it at the base default; at
  another value it is a change like any other."""
  import json
  c = _load(os.path.join(REPO, 'experiments', 'mnist.py'))
  path = str(tmp_path / 'config.json')
  old = c.to_dict()
  del old['compute_dtype']
  workdir.write_json(path, old)
  assert workdir.check_config_matches(c, path)  # compatible; rewritten with the new key
  with open(path) as f:
    assert 'compute_dtype' not in json.load(f)  # checking wrote nothing
  c.compute_dtype = 'bfloat16'
  with pytest.raises(ConfigError, match=r"compute_dtype: '<unset>' -> 'bfloat16'"):
    workdir.check_config_matches(c, path)


def _smoke_data(c, tmp_path):
  """Points the config at data that needs no download and returns a context to train in: a small
  IDX fixture for the MNIST-style datasets, ``tfds.testing.mock_data`` for TFDS, nothing for
  the 2-D mixtures. A config on any other data fails here until a fixture is added."""
  if c.data.source == 'toy2d':
    return contextlib.nullcontext()
  if c.data.source == 'folder':
    from image_folder_fixture import write_image_folder  # pylint: disable=g-import-not-at-top
    c.data.dir = str(tmp_path / 'images')
    write_image_folder(c.data.dir, num_per_class=6)
    c.data.skip_bad_files = True  # the fixture holds one truncated file
    return contextlib.nullcontext()
  if c.data.source == 'tfds':
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    return tfds.testing.mock_data(num_examples=16)
  if names.canonical_name(c.data.name) in names.IDX_DATASETS:
    c.data.source = 'idx'
    c.data.dir = write_idx_fixture(str(tmp_path / 'data'), n_train=128, n_test=32)
    return contextlib.nullcontext()
  raise AssertionError(f'no test data for config.data.source={c.data.source!r}, '
                       f'config.data.name={c.data.name!r}: add a fixture to _smoke_data')


# 19-56 s each, 3-4.5 min for the nine configs on a shared 2-core machine (load average 6-8),
# nearly all XLA compiles (init, step, sampling): slow.
@pytest.mark.slow
@pytest.mark.parametrize('path', CONFIGS, ids=os.path.basename)
def test_smoke_variant_trains(path, tmp_path):
  """``<config>:smoke`` of every experiments/*.py trains to its last step, in-process as
  launch.py would run it; a new config without a working smoke variant fails here."""
  c = _load(path, 'smoke')
  c.num_devices = 1  # a user's single device (compiles faster than conftest's 8 fake ones)
  t = time.time()
  with _smoke_data(c, tmp_path):
    state = train.train_and_evaluate(c, str(tmp_path / 'run'))
  seconds = time.time() - t
  assert int(state.step) == c.num_steps
  with open(tmp_path / 'run' / 'metrics.jsonl') as f:
    rows = [json.loads(line) for line in f]
  losses = [(r['loss_D'], r['loss_G']) for r in rows if 'loss_D' in r]
  assert losses and np.all(np.isfinite(losses))
  assert os.path.exists(tmp_path / 'run' / 'samples' / 'final.png')
  # A backstop, not a benchmark: generous for a loaded 2-core machine, yet the full 128-channel
  # SNGAN the smoke variant once kept had not finished two steps in 10 minutes.
  assert seconds < 300, f'{path}:smoke took {seconds:.0f}s; shrink its widths, batch or steps'


def test_mlp_paper_variant_is_the_peers_unconditional_recipe_on_the_same_nets():
  """benchmarks/throughput.py times mnist_mlp.py:paper against the peer's MLP GAN: it must keep
  the peer's algorithm (no clusters, Adam 2e-4, beta 0.5 / 0.999, constant rate) and nets."""
  path = os.path.join(REPO, 'experiments', 'mnist_mlp.py')
  default, paper = _load(path), _load(path, 'paper')
  config_base.validate_config(paper)
  assert default.model.name == 'mlp_concat_proj' and default.data.clusters > 0
  assert (paper.model.name, paper.data.clusters) == ('mlp', 0)
  o = paper.optim
  assert (o.g_lr, o.d_lr, o.b1, o.b2, o.schedule) == (2e-4, 2e-4, 0.5, 0.999, 'constant')
  for key in ('g_hidden', 'd_hidden', 'd_pieces', 'd_input_dropout', 'd_dropout',
              'matmul_dtype'):
    assert paper.model[key] == default.model[key], key
  assert paper.batch_size == default.batch_size and paper.share_g_forward
  assert _load(path, 'smoke,paper').model.name == 'mlp'


@pytest.mark.parametrize('name', ['mnist_cond.py', 'fashion_cond.py'])
def test_conditional_configs_take_the_recipe_only_for_the_concat_projection_model(name):
  path = os.path.join(REPO, 'experiments', name)
  c, cbn, smoke = _load(path), _load(path, 'cbn_proj'), _load(path, 'smoke')
  assert (c.model.name, c.data.clusters_per_class, c.num_steps) == ('dcgan_concat_proj', 20, 6000)
  assert (c.optim.g_lr, c.optim.b1, c.optim.schedule) == (1e-3, 0.0, 'linear')
  assert smoke.data.clusters_per_class == 2 and smoke.num_steps <= 10
  assert (cbn.model.name, cbn.data.clusters_per_class, cbn.num_steps) == ('dcgan_cbn_proj', 0, 3000)
  assert (cbn.optim.g_lr, cbn.optim.b1) == (2e-4, 0.5)


def test_mnist_cond_bn_variant_differs_from_the_default_only_in_ds_normalisation():
  path = os.path.join(REPO, 'experiments', 'mnist_cond.py')
  c, bn = _load(path), _load(path, 'bn')
  assert c.model.spectral_norm and not bn.model.spectral_norm
  bn.model.spectral_norm = True
  assert bn.to_dict() == c.to_dict()
  assert not _load(path, 'smoke,bn').model.spectral_norm
  with pytest.raises(ValueError, match=r"unknown variant 'sn' of experiments/mnist_cond.py; "
                                       r"valid: cbn_proj, concat, bn, smoke"):
    _load(path, 'sn')
