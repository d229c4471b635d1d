"""gan_jax.sample's picture modes: slerp against closed forms, the exact nearest-neighbour search,
the pictures' contents on a 6-step smoke run, and one-line errors for bad input."""

import os
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from conftest import REPO, subprocess_env, write_idx_fixture
from test_configs import _load
from test_sample_ema import apply_g
from gan_jax import config_base, images, latents, sample, train
from gan_jax import run as run_lib
from gan_jax.errors import UserError
from gan_jax.evaluation import classifier, nearest as nearest_lib, suite

# --- slerp -----------------------------------------------------------------------------------


def _angle(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
  return np.arccos(np.clip(cos, -1, 1))


def test_slerp_hand_computed_quarter_circle():
  z0, z1 = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
  t = jnp.array([0.0, 0.5, 1.0 / 3.0, 1.0])[:, None]
  s = 0.5 ** 0.5
  np.testing.assert_allclose(latents.slerp(z0, z1, t),
                             [[1, 0], [s, s], [np.cos(np.pi / 6), np.sin(np.pi / 6)], [0, 1]],
                             atol=1e-6)


def test_slerp_endpoints_are_exact():
  k0, k1 = jax.random.split(jax.random.key(0))
  z0, z1 = jax.random.normal(k0, (5, 100)), jax.random.normal(k1, (5, 100))
  chex.assert_trees_all_equal(latents.slerp(z0, z1, 0.0), z0)
  chex.assert_trees_all_equal(latents.slerp(z0, z1, 1.0), z1)


def test_slerp_equal_norm_orthogonal_keeps_norm_and_angle_is_linear():
  q, _ = np.linalg.qr(np.random.RandomState(0).randn(64, 2))
  z0, z1 = 8.0 * q[:, 0], 8.0 * q[:, 1]  # |z0| = |z1| = 8, angle pi/2
  t = np.linspace(0, 1, 11)
  path = np.asarray(latents.slerp(jnp.asarray(z0, jnp.float32), jnp.asarray(z1, jnp.float32),
                                  jnp.asarray(t)[:, None]))
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), 8.0, rtol=1e-5)
  np.testing.assert_allclose(_angle(path, z0), t * np.pi / 2, atol=1e-3)
  np.testing.assert_allclose(_angle(path, z1), (1 - t) * np.pi / 2, atol=1e-3)
  # The straight line dips to 8 / sqrt(2) half-way; slerp does not.
  mid = np.asarray(latents.lerp(z0, z1, 0.5))
  np.testing.assert_allclose(np.linalg.norm(mid), 8.0 / 2 ** 0.5, rtol=1e-6)


def test_slerp_general_angle_is_linear_in_t():
  z0 = np.array([3.0, 0.0, 0.0])
  omega = 2.5  # radians, beyond a right angle
  z1 = 3.0 * np.array([np.cos(omega), np.sin(omega), 0.0])
  t = np.linspace(0, 1, 7)
  path = np.asarray(latents.slerp(jnp.asarray(z0), jnp.asarray(z1), jnp.asarray(t)[:, None]))
  np.testing.assert_allclose(_angle(path, z0), t * omega, atol=1e-4)
  np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0, rtol=1e-5)
  np.testing.assert_allclose(path[:, 2], 0.0, atol=1e-6)  # stays in the plane of z0, z1


@pytest.mark.parametrize('z1', [[2.0, 4.0, 6.0], [-1.0, -2.0, -3.0], [0.0, 0.0, 0.0]],
                         ids=['parallel', 'antiparallel', 'zero'])
def test_slerp_degenerate_pairs_fall_back_to_lerp_without_nan(z1):
  z0 = jnp.array([1.0, 2.0, 3.0])
  z1 = jnp.array(z1)
  t = jnp.array([0.0, 0.25, 0.5, 1.0])[:, None]
  out = np.asarray(latents.slerp(z0, z1, t))
  assert np.all(np.isfinite(out))
  np.testing.assert_allclose(out, (1 - np.asarray(t)) * np.asarray(z0) + np.asarray(t) * np.asarray(z1),
                             atol=1e-6)


def test_interpolation_latents_rows_run_between_two_draws():
  z = np.asarray(latents.interpolation_latents(jax.random.key(3), rows=4, steps=6, dim=16))
  assert z.shape == (24, 16)
  k0, k1 = jax.random.split(jax.random.key(3))
  z0 = np.asarray(jax.random.normal(k0, (4, 1, 16)))[:, 0]
  z1 = np.asarray(jax.random.normal(k1, (4, 1, 16)))[:, 0]
  rows = z.reshape(4, 6, 16)
  np.testing.assert_array_equal(rows[:, 0], z0)
  np.testing.assert_array_equal(rows[:, -1], z1)
  np.testing.assert_allclose(rows[:, 2], latents.slerp(z0, z1, 0.4), rtol=1e-5, atol=1e-6)


# --- nearest neighbours ----------------------------------------------------------------------


def test_nearest_neighbours_finds_copies_at_zero_and_matches_brute_force():
  rng = np.random.RandomState(0)
  points = (rng.randn(1000, 128) * 3 + 1).astype(np.float32)  # nonzero mean: cancellation
  copies = [3, 999, 512, 300]
  queries = np.concatenate([points[copies], rng.randn(7, 128).astype(np.float32) * 3 + 1])
  # chunk 300 leaves a padded last chunk; query_chunk 4 makes three query calls
  dist, idx = nearest_lib.nearest_neighbours(queries, points, k=6, chunk=300, query_chunk=4)
  assert dist.shape == idx.shape == (11, 6)
  np.testing.assert_array_equal(idx[:4, 0], copies)
  np.testing.assert_array_equal(dist[:4, 0], 0.0)
  brute = np.sqrt(((queries[:, None].astype(np.float64) - points[None]) ** 2).sum(-1))
  want = np.argsort(brute, axis=1, kind='stable')[:, :6]
  np.testing.assert_array_equal(idx, want)
  np.testing.assert_allclose(dist, np.take_along_axis(brute, want, 1), rtol=1e-5)


def test_nearest_neighbours_k_out_of_range():
  with pytest.raises(UserError, match=r'--k=4 must lie in \[1, 3\]'):
    nearest_lib.nearest_neighbours(np.zeros((1, 2)), np.eye(3, 2), k=4)


# --- picture helpers -------------------------------------------------------------------------


def test_ungrid_inverts_grid_after_scaling(tmp_path):
  x = np.random.RandomState(1).randint(0, 256, (7, 5, 4, 1)).astype(np.uint8)
  path = str(tmp_path / 'g.png')
  images.save_png(images.grid(x, ncol=3), path, scale=2)
  back = images.ungrid(np.asarray(Image.open(path)), 7, (5, 4), ncol=3, scale=2)
  np.testing.assert_array_equal(back, x)
  with pytest.raises(ValueError, match='is not a grid of 10 5x4 images'):
    images.ungrid(np.asarray(Image.open(path)), 10, (5, 4), ncol=3, scale=2)


def test_label_left_adds_a_margin_with_text_and_keeps_the_picture():
  pic = np.full((40, 10, 1), 128, np.uint8)
  out = images.label_left(pic, ['a', 'b'], row_height=20, width=30)
  assert out.shape == (40, 40, 1)
  np.testing.assert_array_equal(out[:, 30:], pic)
  for band in (out[:20, :30], out[20:, :30]):  # each band holds dark text pixels
    assert band.min() < 100


# --- a 6-step smoke run ----------------------------------------------------------------------


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A 6-step unconditional MLP GAN (small, one device: quick to compile) on the IDX fixture:
  checkpoints and 16-sample grids at steps 3 and 6."""
  root = tmp_path_factory.mktemp('sample_modes')
  c = _load(os.path.join(REPO, 'experiments', 'mnist_mlp.py'), 'smoke,paper')
  c.data.dir = write_idx_fixture(str(root / 'data'), n_train=64, n_test=64)
  c.data.source = 'idx'
  c.num_devices = 1
  c.batch_size = 16
  c.model.g_hidden = (64,)
  c.model.d_hidden = (32,)
  wd = str(root / 'run')
  train.train_and_evaluate(c, wd)
  config, shape, exp, state = run_lib.restore_run(wd)
  return {'workdir': wd, 'config': config, 'shape': shape, 'exp': exp, 'state': state}


@pytest.fixture(scope='module')
def net(run):
  """The MNIST evaluation classifier, loaded (and its jit compiled) once for the module."""
  return classifier.load(run['config'].data.name)


def _cells(pic, n, ncol, margin=0, scale=2):
  """The images of a picture written by sample.py (label margin cut off, scale undone)."""
  return images.ungrid(np.asarray(pic)[:, margin:], n, (28, 28), ncol=ncol, scale=scale)


def test_interpolation_picture_rows_start_and_end_at_g_of_the_endpoints(run, tmp_path):
  exp, state = run['exp'], run['state']
  png = str(tmp_path / 'i.png')
  sample.interpolate(run['workdir'], png, rows=3, steps=4, seed=5)
  pic = np.asarray(Image.open(png))
  assert pic.shape == (2 * (3 * 30 + 2), 2 * (4 * 30 + 2))
  cells = _cells(pic, 12, 4).reshape(3, 4, 28, 28, 1)
  k0, k1 = jax.random.split(jax.random.key(5))
  z0 = jax.random.normal(k0, (3, 1, 100))[:, 0]
  z1 = jax.random.normal(k1, (3, 1, 100))[:, 0]
  # G on a batch of 3 vs 12 latents may round a pixel differently: allow one grey level.
  for col, z in ((0, z0), (-1, z1)):
    want = images.to_uint8(apply_g(exp, state, state.ema_params, z)).astype(int)
    np.testing.assert_allclose(cells[:, col].astype(int), want, atol=1)
  assert not np.array_equal(cells[:, 1], cells[:, 0])  # the middle columns are new images


def test_classes_on_an_unconditional_run_is_one_line(run, tmp_path):
  with pytest.raises(UserError) as e:
    sample.classes(run['workdir'], str(tmp_path / 'c.png'))
  assert str(e.value) == ('--mode=classes needs a conditional model; this run\'s '
                          'config.model.name=mlp is unconditional; valid modes: grid, '
                          'interpolate, nearest, progress')
  assert not os.path.exists(tmp_path / 'c.png')


def test_nearest_picture_finds_training_images_at_distance_zero(run, net):
  """A 'generator' that outputs exact training images finds each one first, at distance 0."""
  train_images = suite.load_images(run['config'].data, 'train')
  _, feats = net(train_images)
  picks = [3, 40, 63]
  pic, dist, idx = sample.nearest_picture(train_images[picks], train_images, feats, net, k=3)
  np.testing.assert_array_equal(idx[:, 0], picks)
  np.testing.assert_array_equal(dist[:, 0], 0.0)
  assert np.all(np.diff(dist, axis=1) >= 0) and np.all(dist[:, 1] > 0)
  margin = pic.shape[1] - 2 * (5 * 30 + 2)
  cells = _cells(pic, 15, 5, margin=margin).reshape(3, 5, 28, 28, 1)
  np.testing.assert_array_equal(cells[:, 0], images.to_uint8(train_images[picks]))
  np.testing.assert_array_equal(cells[:, 1], 255)  # the gap
  np.testing.assert_array_equal(cells[:, 2:], images.to_uint8(train_images[idx]))


def test_nearest_mode_prints_a_table_and_writes_the_npz(run, net, tmp_path, capsys, monkeypatch):
  monkeypatch.setattr(classifier, 'load', lambda name: net)
  png, out = str(tmp_path / 'n.png'), str(tmp_path / 'n.npz')
  dist, idx = sample.nearest(run['workdir'], png, rows=3, k=2, out=out, num_summary=3)
  text = capsys.readouterr().out
  table = [l for l in text.splitlines() if l[:1].isdigit()]
  assert len(table) == 3 and f'{idx[2, 1]}: {dist[2, 1]:6.3f}' in table[2]
  assert '3 more samples' in text and '3 held-out test images' in text
  saved = np.load(out)
  assert saved['samples'].shape == (3, 28, 28) and saved['samples'].dtype == np.uint8
  np.testing.assert_array_equal(saved['neighbours'], idx)
  np.testing.assert_array_equal(saved['distances'], dist)
  assert idx.shape == (3, 2) and np.all((idx >= 0) & (idx < 64))
  assert np.all(dist[:, 1] >= dist[:, 0]) and np.all(dist > 0)  # an untrained G copies nothing
  assert Image.open(png).size[1] == 2 * (3 * 30 + 2)


def test_progress_strip_rows_are_the_saved_grids(run, tmp_path):
  wd = run['workdir']
  png, gif = str(tmp_path / 'p.png'), str(tmp_path / 'p.gif')
  sample.progress(wd, png, rows=8, cols=5, gif=gif)
  strip = np.asarray(Image.open(png))
  margin = strip.shape[1] - 2 * (5 * 30 + 2)
  assert margin > 0 and strip.shape[0] == 2 * (2 * 30 + 2)  # steps 3 and 6
  cells = _cells(strip, 10, 5, margin=margin).reshape(2, 5, 28, 28, 1)
  for row, step in enumerate((3, 6)):
    saved = np.asarray(Image.open(os.path.join(wd, 'samples', f'step_{step:07d}.png')))
    np.testing.assert_array_equal(cells[row], images.ungrid(saved, 16, (28, 28), scale=2)[:5])
  with Image.open(gif) as g:
    assert g.n_frames == 2
  with pytest.raises(UserError, match='--cols=17 exceeds the 16 images'):
    sample.progress(wd, png, cols=17)


def test_grid_mode_is_unchanged(run, tmp_path):
  out = str(tmp_path / 's.npz')
  sample.run(run['workdir'], 5, out=out, seed=2)
  s = np.load(out)['samples']
  # G applied directly to the EMA params (the sampling code is what is under test); one grey
  # level of slack for another compiled program's rounding.
  state = run['state']
  want = apply_g(run['exp'], state, state.ema_params,
                 jax.random.normal(jax.random.fold_in(jax.random.key(2), 0), (5, 100)))
  np.testing.assert_allclose(s.astype(int), images.to_uint8(want)[..., 0].astype(int), atol=1)


@pytest.mark.parametrize('call,match', [
    (lambda wd, t: sample.interpolate(wd, t + '/i.png', steps=1), '--steps=1 must be >= 2'),
    (lambda wd, t: sample.interpolate(wd, None), '--mode=interpolate needs --grid out.png'),
    (lambda wd, t: sample.interpolate(wd, t + '/i.png', rows=0), '--rows=0 must be >= 1'),
    (lambda wd, t: sample.nearest(wd, t + '/n.png', k=0), '--k=0 must be >= 1'),
    (lambda wd, t: sample.nearest(wd, t + '/n.png', k=65), '--k=65 must lie in [1, 64]'),
    (lambda wd, t: sample.nearest(wd, t + '/n.png', out='/nonexistent/n.npz'),
     '/nonexistent does not exist'),
    (lambda wd, t: sample.classes(wd, t + '/c.png', cols=0), '--cols=0 must be >= 1'),
    (lambda wd, t: sample.progress(wd, t + '/p.png', gif='/nonexistent/p.gif'),
     '--gif=/nonexistent/p.gif: directory /nonexistent does not exist'),
    (lambda wd, t: sample.progress(t, t + '/p.png'), 'has no samples/step_*.png'),
    (lambda wd, t: sample.interpolate(wd, t + '/i.png', step=4), '--step=4 has no checkpoint'),
    (lambda wd, t: sample.progress(t + '/nope', t + '/p.png'), '/nope does not exist'),
    (lambda wd, t: sample.interpolate(t, t + '/i.png'), 'holds no run'),
    (lambda wd, t: sample.check_mode('grid', ['steps']),
     '--steps does not apply to --mode=grid; it is read by --mode=interpolate'),
    (lambda wd, t: sample.check_mode('progress', ['samples']),
     '--samples does not apply to --mode=progress; it is read by --mode=grid'),
    (lambda wd, t: sample.check_mode('nearest', ['cols']),
     '--cols does not apply to --mode=nearest; it is read by --mode=classes and --mode=progress'),
], ids=['steps_1', 'no_grid', 'rows_0', 'k_0', 'k_too_big', 'out_dir', 'cols_0', 'gif_dir',
        'no_step_pngs', 'no_such_checkpoint', 'missing_workdir', 'not_a_run', 'grid_steps',
        'progress_samples', 'nearest_cols'])
def test_bad_input_in_process(run, net, tmp_path, call, match, monkeypatch):
  monkeypatch.setattr(classifier, 'load', lambda name: net)
  with pytest.raises(UserError, match=None) as e:
    call(run['workdir'], str(tmp_path))
  assert match in str(e.value) and '\n' not in str(e.value)
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('args,match', [
    (['--mode=interp', '--grid=g.png'],
     '--mode=interp is not a mode; valid modes: grid, interpolate, classes, nearest, progress'),
    (['--mode=progress', '--k=3', '--grid=g.png'],
     '--k does not apply to --mode=progress; it is read by --mode=nearest'),
    (['--mode=classes', '--grid=g.png', 'WORKDIR=run'], '--mode=classes needs a conditional model'),
], ids=['unknown_mode', 'flag_of_another_mode', 'classes_unconditional'])
def test_bad_input_cli_one_line_exit_2(run, tmp_path, args, match):
  workdir = str(tmp_path / 'none')
  argv = []
  for a in args:
    if a.startswith('WORKDIR='):
      workdir = run['workdir'] if a == 'WORKDIR=run' else a[8:]
    else:
      argv.append(a)
  r = subprocess.run([sys.executable, '-m', 'gan_jax.sample', f'--workdir={workdir}'] + argv,
                     cwd=str(tmp_path), env=subprocess_env(), text=True, capture_output=True,
                     timeout=120)
  lines = r.stderr.strip().splitlines()
  assert r.returncode == 2, r.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith('error: ') and match in lines[0], r.stderr[-2000:]
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize('mode', ['interpolate', 'nearest', 'classes'])
def test_image_modes_refuse_a_2d_run(mode, tmp_path, monkeypatch):
  config = config_base.base_config()
  config.data.name = 'ring'
  monkeypatch.setattr(run_lib, 'restore_run', lambda wd, step: (config, (2,), None, None))
  with pytest.raises(UserError, match=f'--mode={mode} draws images; the run in {tmp_path} has '
                     '2-D points \\(config.data.name=ring\\); use --mode=grid or progress'):
    getattr(sample, mode)(str(tmp_path), str(tmp_path / 'x.png'))


class _FakeConditional:
  """The conditional Experiment API (``num_classes``, ``row_labels``, ``generate_fn(state, z,
  use_ema, labels)``)
  with a G whose top half shows the label and bottom half the latent's first coordinate."""
  num_classes = 3

  def __init__(self):
    self.config = config_base.base_config()
    self.config.model.latent_dim = 4
    self.calls = []

  def row_labels(self, cols):  # Experiment.row_labels of a run conditioned on its classes
    return np.repeat(np.arange(self.num_classes, dtype=np.int32), cols)

  def generate_fn(self, state, z, use_ema=True, labels=None):
    del state
    self.calls.append(use_ema)
    top = jnp.broadcast_to((labels / 2.0 - 0.5)[:, None, None, None], (len(z), 14, 28, 1))
    bottom = jnp.broadcast_to(jnp.tanh(z[:, 0])[:, None, None, None], (len(z), 14, 28, 1))
    return jnp.concatenate([top, bottom], axis=1)


def test_class_picture_rows_are_classes_and_columns_share_a_latent():
  exp = _FakeConditional()
  pic = sample.class_picture(exp, None, cols=4, key=jax.random.key(0), use_ema=False)
  margin = pic.shape[1] - 2 * (4 * 30 + 2)
  cells = _cells(pic, 12, 4, margin=margin).reshape(3, 4, 28, 28, 1)
  for c in range(3):  # row c is class c in every column
    np.testing.assert_array_equal(cells[c, :, :14], images.to_uint8(c / 2.0 - 0.5))
  z = jax.random.normal(jax.random.key(0), (4, 4))
  want = images.to_uint8(np.tanh(np.asarray(z[:, 0])))
  for c in range(3):  # column j is latent j in every row
    np.testing.assert_array_equal(cells[c, :, 14:, 0, 0], np.broadcast_to(want[:, None], (4, 14)))
  assert exp.calls == [False]
  assert pic[:, :margin].min() < 100  # the class labels are written in the margin


def test_interpolation_of_a_conditional_g_keeps_one_class_per_row():
  exp = _FakeConditional()
  pic = sample.interpolation_picture(exp, None, rows=4, steps=3, key=jax.random.key(1))
  cells = images.ungrid(pic, 12, (28, 28), ncol=3).reshape(4, 3, 28, 28, 1)
  for r, c in enumerate([0, 1, 2, 0]):
    np.testing.assert_array_equal(cells[r, :, :14], images.to_uint8(c / 2.0 - 0.5))


@pytest.mark.slow
def test_classes_mode_on_a_conditional_smoke_run(tmp_path):
  """experiments/mnist_cond.py:smoke, tiny nets: row c of the picture is G(z_j, c) for the same
  latents z_j in every row."""
  c = _load(os.path.join(REPO, 'experiments', 'mnist_cond.py'), 'smoke')
  c.data.clusters_per_class = 0  # labels = classes (sub-clusters: test_clusters_in_classes.py)
  c.data.dir = write_idx_fixture(str(tmp_path / 'data'), n_train=64, n_test=16)
  c.data.source = 'idx'
  c.num_devices = 1
  c.batch_size = 16
  c.model.ngf = 8
  c.model.ndf = 8
  wd = str(tmp_path / 'run')
  train.train_and_evaluate(c, wd)
  png = str(tmp_path / 'classes.png')
  sample.classes(wd, png, cols=3, seed=4, use_ema=False)
  _, _, exp, state = run_lib.restore_run(wd)
  assert exp.num_classes == 10
  pic = np.asarray(Image.open(png))
  margin = pic.shape[1] - 2 * (3 * 30 + 2)
  assert margin > 0 and pic.shape[0] == 2 * (10 * 30 + 2)
  cells = _cells(pic, 30, 3, margin=margin).reshape(10, 3, 28, 28, 1)
  z = jax.random.normal(jax.random.key(4), (3, c.model.latent_dim))
  for label in (0, 7):
    want = exp.generate_fn(state, z, use_ema=False, labels=jnp.full((3,), label, jnp.int32))
    np.testing.assert_allclose(cells[label].astype(int), images.to_uint8(want).astype(int), atol=1)
  assert not np.array_equal(cells[0], cells[7])  # the label changes the picture
