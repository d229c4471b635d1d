"""The DCGANs and the SNGAN ResNet at 32-256 px (gan_jax/models/dcgan_scaled.py, resnet.py's
64-256 px layouts, the registry): one real train step each at 32, 64 and 128 px, abstract
builds at 256 px, the number of resolution levels, config errors, spectral norm and the
projection term. Small widths and batches: the file runs in about a minute on one core."""

import math

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import config_base, steps
from gan_jax.errors import ConfigError
from gan_jax.models import build_models, dcgan_scaled, resnet
from gan_jax.state import create_state, make_optimizer

K = 3        # classes of the conditional models
LATENT = 8
B = 2
# name -> (registry name, small widths); 'sngan_resnet_cond' is sngan_resnet with num_classes.
MODELS = {
    'dcgan': ('dcgan', {'ch': 4}),
    'dcgan_cbn_proj': ('dcgan_cbn_proj', {'ch': 4}),
    'dcgan_concat_proj': ('dcgan_concat_proj', {'ch': 4}),
    'sngan_resnet': ('sngan_resnet', {'g_ch': 2, 'd_ch': 2}),
    'sngan_resnet_cond': ('sngan_resnet', {'g_ch': 2, 'd_ch': 2, 'num_classes': K}),
}
OPTIM = ml_collections.ConfigDict({'g_lr': 1e-3, 'd_lr': 1e-3, 'b1': 0.5, 'b2': 0.999})
# XLA:CPU's compile time is most of this file's: without its backend optimisations and new
# fusion emitters the ResNet's train step compiles in ~1/3 of the time (one core), and these
# toy nets run in milliseconds either way.
FAST_COMPILE = {'xla_backend_optimization_level': 0, 'xla_cpu_use_fusion_emitters': False}


def _compile(fn, *args):
  """``jax.jit(fn)`` compiled for ``args`` with FAST_COMPILE (XLA's defaults where this
  jaxlib lacks those options)."""
  lowered = jax.jit(fn).lower(*args)
  try:
    return lowered.compile(FAST_COMPILE)
  except Exception as e:  # noqa: BLE001 -- jaxlib raises XlaRuntimeError
    if 'No such compile option' not in str(e):
      raise
    return lowered.compile()


def _fill(tree, seed=0):
  """``tree`` (ShapeDtypeStructs of variables, or of a GANState) filled from numpy: weights
  N(0, 1/fan_in), (c)BN scales ~1 and shifts ~0 (per class a little apart), statistics 0 / 1,
  spectral-norm ``u`` ~ N(0, 1) and ``sigma`` 1; Adam's moments and count and the steps 0, as
  ``create_state`` leaves them. (XLA:CPU compiles these nets' random initialisers for longer
  than their train step; the tests need working values, not the init distribution.)"""
  rng = np.random.RandomState(seed)

  def leaf(path, s):
    name = str(getattr(path[-1], 'key', ''))
    if any(getattr(k, 'name', None) == 'opt_state' for k in path):
      return np.zeros(s.shape, s.dtype)
    if name in ('kernel', 'embedding'):
      return (rng.randn(*s.shape) / np.sqrt(np.prod(s.shape[:-1]))).astype(s.dtype)
    if name in ('scale', 'var') or name.endswith('/sigma'):
      return np.ones(s.shape, s.dtype)
    if name == 'gamma':
      return (1 + 0.2 * rng.randn(*s.shape)).astype(s.dtype)
    if name == 'beta':
      return (0.2 * rng.randn(*s.shape)).astype(s.dtype)
    if name.endswith('/u'):
      return rng.randn(*s.shape).astype(s.dtype)
    return np.zeros(s.shape, s.dtype)  # biases, BN means, Adam, steps
  return jax.tree_util.tree_map_with_path(leaf, tree)


def _build(model, shape, **extra):
  name, widths = MODELS[model]
  cfg = ml_collections.ConfigDict({'name': name, 'latent_dim': LATENT, **widths, **extra})
  return build_models(cfg, shape, num_classes=K)


def _label_kw(net, labels):
  return {'labels': labels} if net.num_classes else {}


def _abstract(g, d, shape, dtype_z=jnp.float32):
  """(G variables, D variables, images, logits, D features) as ShapeDtypeStructs."""
  z = jax.ShapeDtypeStruct((B, LATENT), dtype_z)
  x = jax.ShapeDtypeStruct((B,) + shape, jnp.float32)
  y = jax.ShapeDtypeStruct((B,), jnp.int32)
  gv = jax.eval_shape(lambda z: g.init(jax.random.key(0), z, train=False), z)
  dv = jax.eval_shape(lambda x: d.init(jax.random.key(0), x, train=False), x)
  images = jax.eval_shape(lambda v, z, y: g.apply(v, z, train=False, **_label_kw(g, y)), gv, z, y)
  logits, feats = jax.eval_shape(
      lambda v, x, y: d.apply(v, x, train=False, return_features=True, **_label_kw(d, y)),
      dv, images, y)
  return gv, dv, images, logits, feats


def _keys(tree, prefix):
  """Names under ``tree`` (a nested dict, searched at every level) that start with ``prefix``."""
  found = []
  for k, v in tree.items():
    if k.startswith(prefix):
      found.append(k)
    if isinstance(v, dict):
      found += _keys(v, prefix)
  return found


@pytest.mark.parametrize('size,channels', [(32, 1), (64, 3), (128, 3)])
@pytest.mark.parametrize('model', list(MODELS))
def test_one_train_step(model, size, channels):
  shape = (size, size, channels)
  g, d = _build(model, shape)
  nc = g.num_classes
  assert nc == d.num_classes == (0 if model in ('dcgan', 'sngan_resnet') else K)
  cfg = steps.StepConfig(latent_dim=LATENT, num_classes=nc)
  tx_g, tx_d = make_optimizer(OPTIM, 'g'), make_optimizer(OPTIM, 'd')
  # create_state's state (its init traced, not compiled: _fill).
  state = _fill(jax.eval_shape(
      lambda: create_state(g, d, tx_g, tx_d, LATENT, shape, jax.random.key(0))))

  def run(state, reals, labels, key):
    new, metrics = steps.train_step(state, reals, key, cfg, labels)
    y = None if labels is None else labels[0]
    images = steps.generate(new, jax.random.normal(key, (B, LATENT)), train=True, labels=y)
    logits = new.d.apply_fn({'params': new.d.params, 'batch_stats': new.d.batch_stats}, images,
                            train=False, **_label_kw(d, y))
    return new, metrics, images, logits

  reals = np.random.RandomState(1).uniform(-1, 1, (1, B) + shape).astype(np.float32)
  labels = np.array([[0, 2]], np.int32) if nc else None
  key = jax.random.key(2)
  new, metrics, images, logits = _compile(run, state, reals, labels, key)(state, reals, labels,
                                                                          key)

  chex.assert_shape(images, (B, size, size, channels))
  assert images.dtype == jnp.float32 and float(jnp.abs(images).max()) <= 1.0
  assert float(images.std()) > 0.05  # not a constant image (train-mode BN statistics)
  chex.assert_shape(logits, (B,))
  assert logits.dtype == jnp.float32 and np.isfinite(np.asarray(logits)).all()
  for k in ('loss_D', 'loss_G', 'grad_norm_D', 'grad_norm_G'):
    assert np.isfinite(float(metrics[k])), (k, metrics)
  assert float(metrics['grad_norm_D']) > 0 and float(metrics['grad_norm_G']) > 0
  assert int(new.g.step) == 1 and int(new.d.step) == 1
  for net in ('g', 'd'):
    old_p, new_p = getattr(state, net).params, getattr(new, net).params
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), old_p, new_p)
    still = [jax.tree_util.keystr(p) for p, m in jax.tree_util.tree_leaves_with_path(moved)
             if not m]
    assert not still, f'{net}: params that did not change: {still}'
    # BatchNorm statistics / spectral-norm vectors move in training too.
    old_s, new_s = getattr(state, net).batch_stats, getattr(new, net).batch_stats
    assert jax.tree.leaves(old_s) and any(
        np.any(np.asarray(a) != np.asarray(b))
        for a, b in zip(jax.tree.leaves(old_s), jax.tree.leaves(new_s))), net


@pytest.mark.parametrize('model', list(MODELS))
def test_256px_builds_abstractly_with_float32_outputs(model):
  """At 256 px (shapes only, no compute), with bfloat16 activations: float32 images and
  logits; the D features are the last 4x4 map (DCGAN) or the pooled features (ResNet)."""
  shape = (256, 256, 3)
  g, d = _build(model, shape)
  g, d = g.clone(dtype=jnp.bfloat16), d.clone(dtype=jnp.bfloat16)
  gv, dv, images, logits, feats = _abstract(g, d, shape)
  assert (images.shape, images.dtype) == ((B, 256, 256, 3), jnp.float32)
  assert (logits.shape, logits.dtype) == ((B,), jnp.float32)
  if model.startswith('dcgan'):
    widest = 4 * dcgan_scaled.DEFAULT_MULTS[256][0]
    assert feats.shape == (B, 4 * 4 * widest)
  else:
    assert feats.shape == (B, 2 * resnet.CH_MULTS[(256, 256)][0])
  params = sum(x.size for x in jax.tree.leaves((gv['params'], dv['params'])))
  assert params > 10_000


@pytest.mark.parametrize('size', [32, 64, 128, 256])
@pytest.mark.parametrize('model', ['dcgan', 'dcgan_cbn_proj', 'dcgan_concat_proj'])
def test_dcgan_levels_are_log2_of_size_over_4(model, size):
  """G has log2(R/4) transposed convs after the 4x4 dense layer, D as many stride-2 convs
  before its 4x4 head; the widths are ch * mults (G widest first, D mirrored)."""
  n = int(math.log2(size // 4))
  shape = (size, size, 3)
  g, d = _build(model, shape)
  gv, dv, _, _, feats = _abstract(g, d, shape)
  gp, dp = gv['params'], dv['params']
  if model == 'dcgan_concat_proj':
    gp = gp['net']
    assert gp['Dense_0']['kernel'].shape[0] == LATENT + K  # one-hot label concatenated to z
  ups = sorted(_keys(gp, 'UpConv4x4s2_'))
  assert ups == [f'UpConv4x4s2_{i}' for i in range(n)]
  mults = dcgan_scaled.DEFAULT_MULTS[size]
  assert len(mults) == n
  assert gp['Dense_0']['kernel'].shape[-1] == 4 * 4 * 4 * mults[0]
  for i in range(n - 1):
    assert gp[f'UpConv4x4s2_{i}']['kernel'].shape[2] == 4 * mults[i + 1]  # [kh, kw, Cout, Cin]
  assert gp[f'UpConv4x4s2_{n - 1}']['kernel'].shape[2] == 3
  convs = sorted(_keys(dp, 'Conv_'), key=lambda k: int(k.split('_')[1]))
  assert convs == [f'Conv_{i}' for i in range(n + 1)]  # n stride-2 convs and the head
  assert [dp[f'Conv_{i}']['kernel'].shape[-1] for i in range(n)] == [4 * m for m in mults[::-1]]
  assert dp[f'Conv_{n}']['kernel'].shape == (4, 4, 4 * mults[0], 1)
  assert len(_keys(dp, 'BatchNorm_')) == n - 1  # after every conv but the first
  cbn = _keys(gv['params'], 'ConditionalBatchNorm_')
  assert len(cbn) == (n if model == 'dcgan_cbn_proj' else 0)
  assert ('embed' in dp) == (model != 'dcgan')
  assert feats.shape == (B, 4 * 4 * 4 * mults[0])


@pytest.mark.parametrize('size', [32, 64, 128, 256])
@pytest.mark.parametrize('model', ['sngan_resnet', 'sngan_resnet_cond'])
def test_resnet_levels_are_log2_of_size_over_4(model, size):
  """G: log2(R/4) up blocks from 4x4. D: one down block per halving to 4x4, then one block
  at 4x4 (64-256 px); the 32 px layout is SNGAN's (2 down blocks, 2 at 8x8)."""
  n = int(math.log2(size // 4))
  shape = (size, size, 3)
  g, d = _build(model, shape)
  gv, dv, images, _, _ = _abstract(g, d, shape)
  assert sorted(_keys(gv['params'], 'block')) == sorted(f'block{i + 1}' for i in range(n))
  blocks = 4 if size == 32 else n + 1
  assert sorted(_keys(dv['params'], 'block')) == sorted(f'block{i + 1}' for i in range(blocks))
  y = jax.ShapeDtypeStruct((B,), jnp.int32)
  _, st = jax.eval_shape(lambda v, x, y: d.apply(v, x, train=False, capture_intermediates=True,
                                                 **_label_kw(d, y)), dv, images, y)
  sides = [st['intermediates'][f'block{i + 1}']['__call__'][0].shape[1] for i in range(blocks)]
  downs = 2 if size == 32 else n
  assert sides == [size >> (i + 1) for i in range(downs)] + [size >> downs] * (blocks - downs)
  mults = resnet.CH_MULTS[(size, size)] or (1,) * (n + 1)
  widths = [st['intermediates'][f'block{i + 1}']['__call__'][0].shape[-1] for i in range(blocks)]
  assert widths == [2 * m for m in (mults[::-1] if size > 32 else (1,) * 4)]
  assert gv['params']['dense']['kernel'].shape[-1] == 4 * 4 * 2 * mults[0]


def test_resnet_32px_default_is_sngan_and_mults_set_its_widths():
  g, d = _build('sngan_resnet', (32, 32, 3))
  assert (g.mults, d.mults, d.num_down) == ((), (1, 1, 1, 1), 2)
  g, d = _build('sngan_resnet', (32, 32, 3), ch_mults=(4, 2, 2, 1))
  assert (g.mults, d.mults, d.num_down) == ((4, 2, 2, 1), (1, 2, 2, 4), 2)
  gv, dv, images, _, feats = _abstract(g, d, (32, 32, 3))
  assert gv['params']['block3']['conv2']['kernel'].shape[-1] == 2
  assert images.shape == (B, 32, 32, 3) and feats.shape == (B, 8)


@pytest.mark.parametrize('model,shape,extra,message', [
    ('dcgan', (48, 48, 3), {}, r'dcgan takes 28x28 images .* 32x32, 64x64, 128x128, 256x256 '
                               r'ones; the data has shape \(48, 48, 3\)'),
    ('dcgan', (64, 32, 3), {}, r'the data has shape \(64, 32, 3\)'),
    ('dcgan_cbn_proj', (512, 512, 3), {}, r'dcgan_cbn_proj .* shape \(512, 512, 3\)'),
    ('sngan_resnet', (96, 96, 3), {}, r'sngan_resnet takes images of size 28x28, 32x32, 64x64, '
                                      r'128x128, 256x256; the data has shape \(96, 96, 3\)'),
    ('dcgan', (64, 64, 3), {'ch_mults': (8, 4, 2)},
     r'ch_mults=\(8, 4, 2\) does not fit dcgan at 64x64: it takes 4 integers >= 1, '
     r'e\.g\. \(8, 4, 2, 1\)'),
    ('dcgan', (32, 32, 3), {'ch_mults': (4, 0, 1)}, r'ch_mults=\(4, 0, 1\) does not fit'),
    ('sngan_resnet', (128, 128, 3), {'ch_mults': (16, 8, 4, 2, 1)},
     r'ch_mults=\(16, 8, 4, 2, 1\) does not fit sngan_resnet at 128x128: it takes 6 '),
    ('sngan_resnet', (28, 28, 1), {'ch_mults': (2, 1, 1)}, r'ch_mults=\(2, 1, 1\) does not apply'),
    ('dcgan', (28, 28, 1), {'ch_mults': (2, 1)}, r'ch_mults=\(2, 1\) does not apply to dcgan'),
    ('dcgan', (64, 64, 3), {'ch': 0}, r'config.model.ch=0 must be an integer >= 1'),
    ('dcgan_concat', (64, 64, 3), {},
     r'dcgan_concat takes 28x28 images, the data has shape \(64, 64, 3\); at 32x32, 64x64, '
     r'128x128, 256x256 use dcgan_cbn_proj or dcgan_concat_proj'),
])
def test_bad_sizes_and_multipliers_are_config_errors(model, shape, extra, message):
  name, widths = MODELS.get(model, (model, {}))
  cfg = ml_collections.ConfigDict({'name': name, **widths, **extra})
  with pytest.raises(ConfigError, match=message) as err:
    build_models(cfg, shape, num_classes=K)
  assert '\n' not in str(err.value)


def test_base_config_keys_select_the_widths():
  """``config.model.ch`` and ``config.model.ch_mults`` exist in the base config (so that
  ``--config.model.ch_mults=(4,2,1)`` passes the locked config) and reach the nets."""
  c = config_base.base_config()
  assert c.model.ch == 64 and c.model.ch_mults == ()
  c.lock()
  c.model.ch, c.model.ch_mults = 4, (2, 2, 1)
  g, d = build_models(c.model, (32, 32, 1))
  assert (g.ch, g.mults, d.mults) == (4, (2, 2, 1), (2, 2, 1))
  gv, dv, images, _, _ = _abstract(g, d, (32, 32, 1))
  assert gv['params']['Dense_0']['kernel'].shape == (LATENT, 4 * 4 * 8)
  assert [dv['params'][f'Conv_{i}']['kernel'].shape[-1] for i in range(3)] == [4, 8, 8]
  assert images.shape == (B, 32, 32, 1)


def test_spectrally_normalised_scaled_d_has_no_batchnorm():
  shape = (64, 64, 3)
  _, d_bn = _build('dcgan', shape)
  _, d_sn = _build('dcgan_cbn_proj', shape, spectral_norm=True, minibatch_std=True)
  x = jax.ShapeDtypeStruct((B,) + shape, jnp.float32)
  bn = jax.eval_shape(lambda x: d_bn.init(jax.random.key(0), x, train=False), x)
  assert len(_keys(bn['params'], 'BatchNorm_')) == 3
  sn = jax.eval_shape(lambda x: d_sn.init(jax.random.key(0), x, train=False), x)
  assert not _keys(sn['params'], 'BatchNorm') and not _keys(sn['batch_stats'], 'BatchNorm')
  # A power-iteration vector and sigma for every layer: 4 convs, the head and the embedding.
  sigmas = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(
      sn['batch_stats']) if jax.tree_util.keystr(p).endswith("/sigma']")]
  assert len(sigmas) == 6, sigmas
  # minibatch_std: the head sees one more channel.
  assert sn['params']['Conv_4']['kernel'].shape == (4, 4, 4 * 8 + 1, 1)


@pytest.mark.parametrize('model', ['dcgan_cbn_proj', 'dcgan_concat_proj', 'sngan_resnet_cond'])
def test_conditional_nets_depend_on_the_label(model):
  """G's images change with y; D's features do not, and its logit moves with y by exactly the
  projection term <E[y] - E[y'], phi(x)> (phi: the last 4x4 map, sum-pooled; the ResNet's is
  checked against a hand-written one in tests/test_resnet.py)."""
  shape = (32, 32, 3)
  g, d = _build(model, shape)
  z = jax.ShapeDtypeStruct((B, LATENT), jnp.float32)
  x = jax.ShapeDtypeStruct((B,) + shape, jnp.float32)
  gv = _fill(jax.eval_shape(lambda z: g.init(jax.random.key(0), z, train=False), z))
  dv = _fill(jax.eval_shape(lambda x: d.init(jax.random.key(0), x, train=False), x), seed=1)

  def run(gv, dv, z, ys):
    """Training mode (batch statistics), each label batch of ``ys`` in turn."""
    images = [g.apply(gv, z, labels=y, mutable=['batch_stats'])[0] for y in ys]
    out = [d.apply(dv, images[0], labels=y, return_features=True, mutable=['batch_stats'])[0]
           for y in ys]
    return images, out

  ys = (jnp.array([0, 0]), jnp.array([1, 2]))
  z = np.random.RandomState(2).randn(B, LATENT).astype(np.float32)
  (x0, x1), ((l0, f0), (l1, f1)) = _compile(run, gv, dv, z, ys)(gv, dv, z, ys)
  assert float(jnp.abs(x0 - x1).max()) > 1e-2
  np.testing.assert_array_equal(f0, f1)
  assert float(jnp.abs(l0 - l1).min()) > 1e-3
  if model != 'sngan_resnet_cond':
    table = dv['params']['embed']['kernel']  # [num_classes, C]: Dense on one-hot(y)
    phi = f0.reshape(B, 16, -1).sum(axis=1)
    expected = jnp.sum((table[ys[0]] - table[ys[1]]) * phi, axis=-1)
    np.testing.assert_allclose(l0 - l1, expected, rtol=1e-4, atol=1e-4)
