"""The DCGAN and ResNet G/D at 32, 64, 128 px (one real train step each) and 256 px
(``jax.eval_shape``): shapes, the number of resolution levels, the options, and the errors."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models, state as state_lib, steps
from gan_jax.errors import ConfigError
from gan_jax.models import dcgan_scaled

# (model name, conditional, config overrides with small widths)
MODELS = [
    ('dcgan', False, {'ch': 2}),
    ('dcgan', False, {'ch': 2, 'spectral_norm': True}),
    ('dcgan_cbn_proj', True, {'ch': 2}),
    ('dcgan_concat_proj', True, {'ch': 2}),
    ('sngan_resnet', False, {'g_ch': 2, 'd_ch': 4}),
    ('sngan_resnet', True, {'g_ch': 2, 'd_ch': 4, 'num_classes': 3}),
]
IDS = ['dcgan', 'dcgan_sn', 'dcgan_cbn_proj', 'dcgan_concat_proj', 'resnet', 'resnet_cond']


def _cfg(name, **kw):
  c = ml_collections.ConfigDict({'name': name, 'latent_dim': 8, 'ch_mults': (),
                                 'kernels': 'flax', 'matmul_dtype': 'float32'})
  for k, v in kw.items():
    c[k] = v
  return c


def _build(name, cond, kw, res, channels=3):
  return models.build_models(_cfg(name, **kw), (res, res, channels), num_classes=3 if cond else 0)


def _levels(params, prefix):
  return sorted(k for k in params if k.startswith(prefix))


@pytest.mark.parametrize('res', [32, 64, 128])
@pytest.mark.parametrize('name,cond,kw', MODELS, ids=IDS)
def test_one_train_step_at_each_resolution(name, cond, kw, res):
  channels = 1 if res == 64 else 3
  g, d = _build(name, cond, kw, res, channels)
  cfg = steps.StepConfig(latent_dim=8, num_classes=3 if cond else 0, ema_decay=0.9)
  opt = state_lib.make_optimizer(ml_collections.ConfigDict(
      {'g_lr': 1e-3, 'd_lr': 1e-3, 'b1': 0.5, 'b2': 0.999}), 'g')
  st = state_lib.create_state(g, d, opt, opt, 8, (res, res, channels), jax.random.key(0),
                              ema=True)
  b = 2
  reals = jax.random.uniform(jax.random.key(1), (1, b, res, res, channels), minval=-1, maxval=1)
  labels = jnp.array([[0, 2]], jnp.int32) if cond else None
  step = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  new, metrics = step(st, reals, jax.random.key(2), labels=labels)
  assert all(np.isfinite(float(v)) for v in metrics.values())
  for before, after in ((st.g.params, new.g.params), (st.d.params, new.d.params)):
    moved = [not np.allclose(x, y) for x, y in zip(jax.tree.leaves(before), jax.tree.leaves(after))]
    assert sum(moved) >= len(moved) // 2
  kwl = {'labels': jnp.array([1, 2])} if cond else {}
  img = steps.generate(new, jax.random.normal(jax.random.key(3), (b, 8)), labels=kwl.get('labels'))
  assert img.shape == (b, res, res, channels) and float(jnp.max(jnp.abs(img))) <= 1.0
  logits = d.apply({'params': new.d.params, 'batch_stats': new.d.batch_stats}, img, train=False,
                   **kwl)
  assert logits.shape == (b,) and logits.dtype == jnp.float32


@pytest.mark.parametrize('name,cond,kw', MODELS, ids=IDS)
def test_256_px_builds(name, cond, kw):
  g, d = _build(name, cond, kw, 256)
  kwl = {'labels': jnp.zeros((2,), jnp.int32)} if cond else {}
  gv = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((2, 8)), train=False))
  img = jax.eval_shape(lambda v: g.apply(v, jnp.zeros((2, 8)), train=False, **kwl), gv)
  assert img.shape == (2, 256, 256, 3)
  dv = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((2, 256, 256, 3)), train=False))
  out = jax.eval_shape(lambda v: d.apply(v, jnp.zeros((2, 256, 256, 3)), train=False, **kwl), dv)
  assert out.shape == (2,)


@pytest.mark.parametrize('res', [32, 64, 128, 256])
def test_the_dcgan_has_one_level_per_doubling(res):
  g, d = _build('dcgan', False, {'ch': 2}, res)
  gp = jax.eval_shape(lambda: g.init(jax.random.key(0), jnp.zeros((1, 8)), train=False))['params']
  dp = jax.eval_shape(lambda: d.init(jax.random.key(0), jnp.zeros((1, res, res, 3)),
                                     train=False))['params']
  n = int(np.log2(res // 4))
  assert len(_levels(gp, 'UpConv')) == n                 # 4 -> R
  assert len(_levels(dp, 'Conv_')) == n + 1               # R -> 4, and the 4x4 head
  widths = [gp[k]['kernel'].shape[-2] for k in sorted(_levels(gp, 'UpConv'),
                                                      key=lambda k: int(k.rsplit('_', 1)[1]))]
  # transpose_kernel=True: [kh, kw, Cout, Cin]
  assert widths == [2 * m for m in dcgan_scaled.DEFAULT_MULTS[res][1:]] + [3]


def test_spectral_norm_drops_batchnorm_and_the_projection_uses_the_label():
  _, d = _build('dcgan', False, {'ch': 2, 'spectral_norm': True}, 32)
  v = d.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)), train=False)
  assert not any('BatchNorm' in k for k in v['params'])
  _, d = _build('dcgan_cbn_proj', True, {'ch': 2}, 32)
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  v = d.init(jax.random.key(0), x, train=False)
  v = jax.tree.map(lambda a: a + 0.1 * jax.random.normal(jax.random.key(5), a.shape), v)
  a = d.apply(v, x, labels=jnp.array([0, 0]), train=False)
  b = d.apply(v, x, labels=jnp.array([1, 1]), train=False)
  assert not np.allclose(a, b)


@pytest.mark.parametrize('name,kw,shape,match', [
    ('dcgan', {}, (48, 48, 3), r'dcgan takes 28x28 .* 32x32, 64x64.*shape \(48, 48, 3\)'),
    ('dcgan', {}, (64, 32, 3), r'shape \(64, 32, 3\)'),
    ('dcgan', {'ch_mults': (4, 2)}, (64, 64, 3), r'ch_mults=\(4, 2\) .* takes 4 integers'),
    ('sngan_resnet', {}, (96, 96, 3), r'128x128, 256x256; the data has shape \(96, 96, 3\)'),
    ('sngan_resnet', {'ch_mults': (1, 1)}, (128, 128, 3), r'ch_mults=\(1, 1\) .* takes 6'),
    ('dcgan_concat', {}, (64, 64, 3), 'use dcgan_cbn_proj or dcgan_concat_proj'),
])
def test_bad_sizes_and_multipliers_name_the_value(name, kw, shape, match):
  with pytest.raises(ConfigError, match=match):
    models.build_models(_cfg(name, **kw), shape, num_classes=3)
