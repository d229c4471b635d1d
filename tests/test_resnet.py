"""SNGAN ResNet G and D (gan_jax/models/resnet.py): layouts, blocks against hand-written
references, spectral norm, conditional BN, the projection term, and short training runs."""

import json
import os
import re

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from conftest import REPO, write_idx_fixture
from test_configs import _load
from gan_jax import train
from gan_jax.errors import ConfigError
from gan_jax.models import build_models, resnet


def _models(shape, g_ch=8, d_ch=8, **extra):
  return build_models(ml_collections.ConfigDict(
      {'name': 'sngan_resnet', 'g_ch': g_ch, 'd_ch': d_ch, **extra}), shape)


def _variables(module, *args, seed=0, **kwargs):
  """Variables with ``module.init``'s tree, filled from numpy: N(0, 0.5^2) weights, BN
  statistics 0 / 1, spectral-norm ``u`` ~ N(0, 1) and ``sigma`` 1. (XLA compiles random
  initialisers slowly on CPU; the tests need arbitrary values, not the init distribution.)"""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
  rng = np.random.RandomState(seed)

  def fill(path, leaf):
    name = path[-1].key
    if name == 'mean':
      return np.zeros(leaf.shape, np.float32)
    if name in ('var',) or name.endswith('/sigma'):
      return np.ones(leaf.shape, np.float32)
    return (rng.randn(*leaf.shape) * (1.0 if name.endswith('/u') else 0.5)).astype(np.float32)
  return jax.tree_util.tree_map_with_path(fill, shapes)


def _conv(x, w, b):
  """Reference 'same' conv (odd kernel), NHWC / HWIO."""
  p = w.shape[0] // 2
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((p, p), (p, p)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
                                      precision='highest') + b


def _pool(x):
  b, h, w, c = x.shape
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _power_sigma(w, u):
  """One power iteration from ``u`` (what flax's SpectralNorm does in eval mode), by hand."""
  w = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
  v = np.asarray(u, np.float64) @ w.T
  v /= np.linalg.norm(v)
  u2 = v @ w
  u2 /= np.linalg.norm(u2)
  return float((v @ w @ u2.T)[0, 0])


Z = jax.random.normal(jax.random.key(0), (3, 128))
LABELS = jnp.array([0, 1, 2])


@pytest.fixture(scope='module')
def cond32():
  """Tiny class-conditional 32x32 nets (3 classes) with numpy-filled variables, and G's images."""
  g, d = _models((32, 32, 3), g_ch=8, d_ch=6, num_classes=3)
  gv = _variables(g, Z, LABELS, train=False)
  x, _ = g.apply(gv, Z, LABELS, train=True, mutable=['batch_stats'])
  dv = _variables(d, x, LABELS, train=False, seed=1)
  return g, gv, d, dv, x


def test_layout_32x32_shapes_range_and_features(cond32):
  g, gv, d, dv, x = cond32
  assert sorted(k for k in gv['params'] if k.startswith('block')) == ['block1', 'block2', 'block3']
  chex.assert_shape(gv['params']['dense']['kernel'], (128, 4 * 4 * 8))
  x, st = g.apply(gv, Z, LABELS, train=True, mutable=['batch_stats'], capture_intermediates=True)
  chex.assert_shape(x, (3, 32, 32, 3))
  assert x.dtype == jnp.float32 and float(jnp.abs(x).max()) <= 1.0
  # The image is tanh of the last conv (3x3 to C channels).
  pre = st['intermediates']['conv_out']['__call__'][0]
  np.testing.assert_allclose(x, np.tanh(pre), rtol=1e-5, atol=1e-6)
  assert float(x.std()) > 0.1 and float(jnp.abs(pre).max()) > 1.0

  (logits, feats), st = d.apply(dv, x, LABELS, train=False, return_features=True,
                                capture_intermediates=True)
  chex.assert_shape(logits, (3,))
  chex.assert_shape(feats, (3, 6))
  # Two downsampling blocks: the last feature map is 8x8; the features are its global *sum*
  # pool after ReLU.
  h = st['intermediates']['block4']['__call__'][0]
  chex.assert_shape(h, (3, 8, 8, 6))
  np.testing.assert_allclose(feats, jnp.maximum(h, 0).sum(axis=(1, 2)), rtol=1e-5, atol=1e-5)


def test_layout_28x28_shapes():
  g, d = _models((28, 28, 1), g_ch=8, d_ch=6)
  gv = jax.eval_shape(lambda: g.init(jax.random.key(0), Z, train=False))
  assert sorted(k for k in gv['params'] if k.startswith('block')) == ['block1', 'block2']
  chex.assert_shape(gv['params']['dense']['kernel'], (128, 7 * 7 * 8))
  x = jax.eval_shape(lambda v: g.apply(v, Z, train=False), gv)
  chex.assert_shape(x, (3, 28, 28, 1))
  dv = jax.eval_shape(lambda x: d.init(jax.random.key(0), x, train=False), x)
  (logits, feats), st = jax.eval_shape(
      lambda v, x: d.apply(v, x, train=False, return_features=True, capture_intermediates=True),
      dv, x)
  chex.assert_shape((logits, feats), ((3,), (3, 6)))
  chex.assert_shape(st['intermediates']['block4']['__call__'][0], (3, 7, 7, 6))  # 28 -> 14 -> 7


def test_unknown_shape_is_a_config_error():
  for shape in ((48, 48, 3), (2,)):
    with pytest.raises(ConfigError, match=r'sngan_resnet takes images of size 28x28, 32x32, '
                                          r'64x64, 128x128, 256x256; the data has shape ' +
                                          re.escape(str(shape))):
      _models(shape)


def test_generator_block_matches_reference():
  """up-ResBlock: h = conv2(relu(bn2(conv1(up(relu(bn1(x))))))) + conv1x1(up(x))."""
  block = resnet.GBlock(5)
  x = jax.random.normal(jax.random.key(0), (3, 4, 4, 2))
  v = _variables(block, x, train=True)
  y, _ = block.apply(v, x, train=True, mutable=['batch_stats'])
  p = v['params']

  def bn(h, q):  # training mode: batch statistics over B, H, W (biased variance)
    mean, var = h.mean(axis=(0, 1, 2)), h.var(axis=(0, 1, 2))
    return (h - mean) / np.sqrt(var + 1e-5) * q['scale'] + q['bias']

  up = lambda h: np.repeat(np.repeat(h, 2, axis=1), 2, axis=2)
  c = lambda h, q: _conv(h, q['kernel'], q['bias'])
  h = c(up(np.maximum(bn(x, p['bn1']), 0)), p['conv1'])
  h = c(np.maximum(bn(h, p['bn2']), 0), p['conv2'])
  chex.assert_shape(y, (3, 8, 8, 5))
  np.testing.assert_allclose(y, h + c(up(x), p['shortcut']), rtol=1e-4, atol=1e-4)


def test_discriminator_blocks_match_reference():
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 4))
  c = lambda h, q: _conv(h, q['kernel'], q['bias'])
  relu = lambda h: np.maximum(h, 0)
  for optimized, downsample, cin in [(True, True, 3), (False, True, 4), (False, False, 4),
                                     (False, False, 2)]:
    xi = x[..., :cin]
    block = resnet.DBlock(4, downsample=downsample, optimized=optimized, spectral_norm=False)
    p = _variables(block, xi)['params']
    y = block.apply({'params': p}, xi)
    h = c(relu(c(xi if optimized else relu(xi), p['conv1'])), p['conv2'])
    if downsample:
      h = _pool(h)
    if optimized:
      short = c(_pool(xi), p['shortcut'])  # pool first, then the 1x1 conv
    elif downsample:
      short = _pool(c(xi, p['shortcut']))
    elif cin != 4:
      short = c(xi, p['shortcut'])  # width changes: a 1x1 conv
    else:
      assert 'shortcut' not in p  # identity shortcut: no parameters
      short = xi
    np.testing.assert_allclose(y, h + short, rtol=1e-4, atol=1e-4,
                               err_msg=f'optimized={optimized} downsample={downsample} cin={cin}')


def _sigmas(stats):
  """{'block1/conv1/kernel': sigma, ...} from D's batch_stats (drops the SpectralNorm_k level)."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(stats):
    keys = [k.key for k in path]
    if keys[-1].endswith('/sigma'):
      out['/'.join(keys[:-2] + [keys[-1][:-len('/sigma')]])] = leaf
  return out


def test_spectral_norm_on_every_discriminator_layer(cond32):
  """After power iterations in train mode, every D weight divided by its stored sigma has
  largest singular value 1 (numpy SVD), and the forward pass uses those normalised weights."""
  _, _, d, dv, x = cond32
  params = dv['params']
  step = jax.jit(lambda stats: d.apply({'params': params, 'batch_stats': stats}, x, LABELS,
                                       train=True, mutable=['batch_stats'])[1]['batch_stats'])
  stats = dv['batch_stats']
  for _ in range(40):
    stats = step(stats)
  sigmas = _sigmas(stats)
  matrices = {'/'.join(k.key for k in path): w
              for path, w in jax.tree_util.tree_leaves_with_path(params) if w.ndim >= 2}
  # Every matrix of D: 10 convs (incl. 2 shortcuts), the linear layer, the projection embedding.
  assert sorted(sigmas) == sorted(matrices) and len(matrices) == 12
  for name, w in matrices.items():
    w2 = np.asarray(w, np.float64).reshape(-1, w.shape[-1])
    top = np.linalg.svd(w2, compute_uv=False)[0]
    assert top > 1.2, name  # the raw weight is not normalised already
    np.testing.assert_allclose(np.linalg.svd(w2 / float(sigmas[name]), compute_uv=False)[0], 1.0,
                               rtol=2e-3, err_msg=name)

  # The forward pass: the same net without SN, fed W / sigma, gives the same logits.
  _, plain = _models((32, 32, 3), d_ch=6, num_classes=3, spectral_norm=False)
  scaled = jax.tree_util.tree_map_with_path(
      lambda path, w: w / sigmas['/'.join(k.key for k in path)] if w.ndim >= 2 else w, params)
  np.testing.assert_allclose(d.apply({'params': params, 'batch_stats': stats}, x, LABELS,
                                     train=False),
                             plain.apply({'params': scaled}, x, LABELS, train=False), rtol=2e-3)


def test_conditional_batch_norm_closed_form():
  cbn = resnet.ConditionalBatchNorm(3, use_running_average=False)
  x = jax.random.normal(jax.random.key(0), (6, 2, 2, 4)) * 3.0 + 1.0
  y = jnp.array([0, 1, 2, 2, 1, 0])
  v = _variables(cbn, x, y)
  out, _ = cbn.apply(v, x, y, mutable=['batch_stats'])
  x_hat = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
  gamma, beta = v['params']['gamma'], v['params']['beta']
  want = x_hat * gamma[y][:, None, None, :] + beta[y][:, None, None, :]
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
  # Initialised, gamma = 1 and beta = 0: plain BatchNorm, whatever the label.
  init = cbn.init(jax.random.key(0), x, y)
  np.testing.assert_array_equal(init['params']['gamma'], np.ones((3, 4)))
  np.testing.assert_array_equal(init['params']['beta'], np.zeros((3, 4)))
  out0, _ = cbn.apply(init, x, y, mutable=['batch_stats'])
  np.testing.assert_allclose(out0, x_hat, rtol=1e-4, atol=1e-4)


def test_conditional_generator_uses_the_label(cond32):
  g, gv, _, _, _ = cond32
  assert 'gamma' in gv['params']['block1']['bn1']
  run = lambda labels: np.asarray(g.apply(gv, Z, jnp.array(labels), train=False))
  a, b = run([0, 1, 2]), run([0, 1, 2])
  np.testing.assert_array_equal(a, b)  # same labels, same images
  c = run([2, 1, 2])
  assert np.abs(a[0] - c[0]).max() > 1e-2  # another label changes that sample...
  np.testing.assert_allclose(a[1:], c[1:], rtol=1e-5, atol=1e-6)  # ...and only that one
  with pytest.raises(ValueError, match=r'class-conditional \(num_classes=3\).*labels'):
    g.apply(gv, Z, train=False)
  with pytest.raises(ValueError, match=r'labels have shape \(2,\); expected \(3,\)'):
    g.apply(gv, Z, jnp.array([0, 1]), train=False)
  # Initialising needs no labels and builds the same params.
  chex.assert_trees_all_equal_shapes(jax.eval_shape(lambda: g.init(jax.random.key(0), Z,
                                                                   train=False)), gv)


def test_unconditional_nets_ignore_labels():
  g, d = _models((32, 32, 3), g_ch=8, d_ch=6)  # the widths of cond32: op caches are shared
  gv = _variables(g, Z, train=False)
  x = g.apply(gv, Z, train=False)
  np.testing.assert_array_equal(g.apply(gv, Z, LABELS, train=False), x)
  dv = _variables(d, x, train=False)
  np.testing.assert_array_equal(d.apply(dv, x, LABELS, train=False), d.apply(dv, x, train=False))
  assert 'embed' not in dv['params']


def test_projection_term_by_hand(cond32):
  """D(x, y) = <w / ||w||, phi(x)> + b + <embed[y] / sigma_embed, phi(x)>: the unconditional
  logit (spectral norm of a one-column matrix is its norm) plus the projection term."""
  _, _, d, dv, x = cond32
  logits, h = d.apply(dv, x, LABELS, train=False, return_features=True)
  h = np.asarray(h, np.float64)
  lin = dv['params']['linear']
  unconditional = h @ (np.asarray(lin['kernel'][:, 0], np.float64) /
                       np.linalg.norm(lin['kernel'])) + lin['bias'][0]
  e = dv['params']['embed']['embedding']
  u = next(s['embed/embedding/u'] for s in dv['batch_stats'].values() if 'embed/embedding/u' in s)
  projection = np.sum(np.asarray(e, np.float64)[np.asarray(LABELS)] / _power_sigma(e, u) * h, 1)
  assert np.abs(projection).min() > 1e-2  # a term that matters
  np.testing.assert_allclose(logits - unconditional, projection, rtol=1e-4, atol=1e-4)
  # Another label changes only its own sample's logit.
  other = d.apply(dv, x, jnp.array([1, 1, 2]), train=False)
  assert abs(float(other[0] - logits[0])) > 1e-3
  np.testing.assert_allclose(other[1:], logits[1:], rtol=1e-6)
  with pytest.raises(ValueError, match='class-conditional'):
    d.apply(dv, x, train=False)


def _finite_losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  losses = [(r['loss_D'], r['loss_G']) for r in rows if 'loss_D' in r]
  assert losses and np.all(np.isfinite(losses))
  return losses


@pytest.mark.slow  # 25-50 s on 2 cores, nearly all XLA compiles (init, train step, sampling)
def test_cifar10_sngan_smoke_trains_on_mock_tfds(tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  c = _load(os.path.join(REPO, 'experiments', 'cifar10_sngan.py'), 'smoke')
  assert (c.loss, c.n_critic, c.data.source, c.data.name) == ('hinge', 5, 'tfds', 'cifar10')
  c.model.g_ch, c.model.d_ch = 8, 8
  c.batch_size = 8
  c.num_steps = 4
  with tfds.testing.mock_data(num_examples=16):
    state = train.train_and_evaluate(c, str(tmp_path))
  assert int(state.step) == 4 and int(state.d.step) == 4 * 5  # n_critic D updates per step
  assert sorted(os.listdir(tmp_path / 'checkpoints')) == ['3', '4']
  assert os.path.exists(tmp_path / 'samples' / 'final.png')
  _finite_losses(str(tmp_path))
  chex.assert_shape(state.g.params['conv_out']['kernel'], (3, 3, 8, 3))  # RGB out
  assert 'SpectralNorm_0' in state.d.batch_stats  # SN state lives in the train state


@pytest.mark.slow  # 25-50 s on 2 cores, nearly all XLA compiles (init, train step, sampling)
def test_mnist_sngan_smoke_trains(tmp_path):
  c = _load(os.path.join(REPO, 'experiments', 'mnist_sngan.py'), 'smoke')
  assert (c.loss, c.n_critic, c.optim.b1, c.optim.b2) == ('hinge', 5, 0.0, 0.9)
  c.data.dir = write_idx_fixture(str(tmp_path / 'data'), n_train=64, n_test=16)
  c.data.source = 'idx'
  c.model.g_ch, c.model.d_ch = 8, 8
  c.batch_size = 8
  c.num_devices = 1  # one device compiles faster; the CIFAR-10 test above runs sharded
  c.num_steps = 3
  state = train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert int(state.step) == 3
  assert os.listdir(tmp_path / 'run' / 'checkpoints') == ['3']
  _finite_losses(str(tmp_path / 'run'))
  chex.assert_shape(state.g.params['dense']['kernel'], (128, 7 * 7 * 8))
