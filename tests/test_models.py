"""The models' shapes, widths, options and config errors (their XLA:CPU kernels:
tests/test_kernels_xla_cpu.py; kernels='flax' against 'xla_cpu': tests/test_model_kernels.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import ConfigError
from gan_jax.models import build_models, dcgan, layers, mlp
import ml_collections


@pytest.mark.parametrize('name', ['dcgan', 'mlp'])
def test_matmul_dtype_bfloat16_keeps_the_params_and_nearly_the_function(name):
  cfg = ml_collections.ConfigDict({'name': name})
  g32, d32 = build_models(cfg, (28, 28, 1))
  cfg.matmul_dtype = 'bfloat16'
  g16, d16 = build_models(cfg, (28, 28, 1))
  z = jax.random.normal(jax.random.key(0), (4, 100))
  vg = g32.init(jax.random.key(1), z, train=False)
  assert jax.tree.map(jnp.shape, vg) == jax.tree.map(jnp.shape, g16.init(jax.random.key(1), z,
                                                                         train=False))
  x32, x16 = g32.apply(vg, z, train=False), g16.apply(vg, z, train=False)
  assert x16.dtype == jnp.float32
  assert 0 < np.abs(np.asarray(x32) - np.asarray(x16)).max() < 0.05  # bf16 rounding, no more
  vd = d32.init(jax.random.key(2), x32, train=False)
  l32, l16 = d32.apply(vd, x32, train=False), d16.apply(vd, x32, train=False)
  np.testing.assert_allclose(l16, l32, rtol=0.05, atol=0.05)


def test_matmul_dtype_errors_name_the_value_and_the_models():
  with pytest.raises(ConfigError, match=r"config.model.matmul_dtype='int8' is not a matmul dtype; "
                                        r'valid: float32, bfloat16'):
    build_models(ml_collections.ConfigDict({'name': 'dcgan', 'matmul_dtype': 'int8'}), (28, 28, 1))
  with pytest.raises(ConfigError, match=r"applies to the models dcgan, mlp, not 'sngan_resnet'"):
    build_models(ml_collections.ConfigDict({'name': 'sngan_resnet', 'matmul_dtype': 'bfloat16'}),
                 (28, 28, 1))


def test_dcgan_shapes_and_param_counts_match_the_peer():
  g, d = dcgan.Generator(), dcgan.Discriminator()
  z = jnp.zeros((3, 100))
  gv = g.init(jax.random.key(0), z, train=False)
  x = g.apply(gv, z, train=False)
  assert x.shape == (3, 28, 28, 1) and float(jnp.abs(x).max()) <= 1.0
  dv = d.init(jax.random.key(0), x, train=False)
  assert d.apply(dv, x, train=False).shape == (3,)
  count = lambda t: sum(a.size for a in jax.tree.leaves(t))
  # The peer's PyTorch nets: G 1,666,816 params (convs 1,664,000 + BN 2*(256+128)); D 272,512.
  assert count(gv['params']) == 100 * 7 * 7 * 256 + 4 * 4 * 256 * 128 + 4 * 4 * 128 + 2 * (256 + 128)
  assert count(dv['params']) == 4 * 4 * 64 + 4 * 4 * 64 * 128 + 2 * 128 + 7 * 7 * 128


def test_mlp_paper_widths_and_maxout():
  g, d = mlp.Generator(), mlp.Discriminator()
  gv = g.init(jax.random.key(0), jnp.zeros((2, 100)))
  assert [gv['params'][f'Dense_{i}']['kernel'].shape for i in range(3)] == [
      (100, 1200), (1200, 1200), (1200, 784)]
  dv = d.init(jax.random.key(0), jnp.zeros((2, 28, 28, 1)), train=False)
  assert dv['params']['Maxout_0']['Dense_0']['kernel'].shape == (784, 240 * 5)
  # maxout = max over pieces
  m = layers.Maxout(2, 3)
  p = m.init(jax.random.key(0), jnp.ones((1, 4)))
  k, b = p['params']['Dense_0']['kernel'], p['params']['Dense_0']['bias']
  x = jnp.arange(4.0)[None]
  np.testing.assert_allclose(m.apply(p, x), (x @ k + b).reshape(1, 2, 3).max(-1), rtol=1e-6)
  # dropout is active in train mode only
  x = jnp.ones((4, 28, 28, 1))
  a = d.apply(dv, x, train=True, rngs={'dropout': jax.random.key(1)})
  b2 = d.apply(dv, x, train=True, rngs={'dropout': jax.random.key(2)})
  assert not np.allclose(a, b2)
  np.testing.assert_allclose(d.apply(dv, x, train=False), d.apply(dv, x, train=False))


def test_unknown_model_and_bad_shape_are_config_errors():
  with pytest.raises(ConfigError, match=r"config.model.name='resnet'.*valid: dcgan, mlp"):
    build_models(ml_collections.ConfigDict({'name': 'resnet'}), (28, 28, 1))
  with pytest.raises(ConfigError, match=r'28x28.*\(48, 48, 3\)'):
    build_models(ml_collections.ConfigDict({'name': 'dcgan'}), (48, 48, 3))
