"""config.model.kernels: every model built with 'flax' and with 'xla_cpu' has the same variables
and computes the same function (train and eval mode, and gradients); one resolution, one
ConfigError for a bad value; model.matmul_dtype in flax's own terms (gan_jax.kernels.bf16)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import kernels
from gan_jax.errors import ConfigError
from gan_jax.kernels import bf16
from gan_jax.models import CONDITIONAL_MODELS, MATMUL_DTYPE_MODELS, MODELS, build_models

K = 10
LATENT = 16


def _build(name, kernel_set, matmul_dtype='float32', **extra):
  mc = ml_collections.ConfigDict({
      'name': name, 'kernels': kernel_set, 'matmul_dtype': matmul_dtype, 'ngf': 8, 'ndf': 8,
      'g_ch': 8, 'd_ch': 8, 'g_hidden': (32,), 'd_hidden': (24,), 'd_pieces': 2, **extra})
  return build_models(mc, (28, 28, 1), num_classes=K if name in CONDITIONAL_MODELS else 0)


def _variables(g, d):
  """The variables of create_state's init (train=False)."""
  gv = g.init({'params': jax.random.key(0)}, jnp.zeros((2, LATENT)), train=False)
  dv = d.init({'params': jax.random.key(1), 'dropout': jax.random.key(2)},
              jnp.zeros((2, 28, 28, 1)), train=False)
  return gv, dv


def _check_same_tree(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  assert jax.tree.map(jnp.shape, a) == jax.tree.map(jnp.shape, b)
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(u, v)  # the same initial values, too


def _outputs(name, g, d, gv, dv, train):
  """G's images, D's logits on them and on reals, the BN/SN updates, and the gradients of a
  loss through both nets w.r.t. both nets' params."""
  rs = np.random.RandomState(0)
  z = jnp.asarray(rs.normal(size=(8, LATENT)), jnp.float32)
  x = jnp.asarray(rs.uniform(-1, 1, size=(8, 28, 28, 1)), jnp.float32)
  lab = dict(labels=jnp.arange(8) % K) if name in CONDITIONAL_MODELS else {}
  kw = dict(train=train, mutable=['batch_stats'])
  rngs = {'dropout': jax.random.key(3)}

  def loss(gp, dp):
    fake, g_upd = g.apply({**gv, 'params': gp}, z, **kw, **lab)
    fake_logits, d_upd = d.apply({**dv, 'params': dp}, fake, **kw, rngs=rngs, **lab)
    real_logits, _ = d.apply({**dv, 'params': dp}, x, **kw, rngs=rngs, **lab)
    out = (fake, fake_logits, real_logits, g_upd, d_upd)
    return jnp.sum(jnp.sin(3 * fake)) + jnp.sum(fake_logits) - jnp.sum(real_logits ** 2), out

  (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
      gv['params'], dv['params'])
  return out, grads


# Every model, and the D options that wrap or widen the layers the kernels replace.
OPTIONS = [(name, {}) for name in sorted(MODELS)] + [
    ('dcgan', {'spectral_norm': True, 'minibatch_std': True}),
    ('dcgan_concat_proj', {'minibatch_std': True}),
    ('mlp', {'spectral_norm': True, 'minibatch_std': True, 'd_pieces': 1})]


@pytest.mark.parametrize('name,options', OPTIONS)
def test_flax_and_xla_cpu_give_the_same_variables_and_function(name, options):
  """For every model: the same init variables (tree, shapes, values: a checkpoint trained with
  one restores with the other), and G's images, D's logits, BN and spectral-norm updates and
  gradients equal to float32 rounding, in train and in eval mode."""
  (gf, df), (gx, dx) = _build(name, 'flax', **options), _build(name, 'xla_cpu', **options)
  (gvf, dvf), (gvx, dvx) = _variables(gf, df), _variables(gx, dx)
  _check_same_tree(gvf, gvx)
  _check_same_tree(dvf, dvx)
  for train in (True, False):
    of, grf = _outputs(name, gf, df, gvf, dvf, train)
    ox, grx = _outputs(name, gx, dx, gvf, dvf, train)
    assert jax.tree.structure((of, grf)) == jax.tree.structure((ox, grx))
    for a, b in zip(jax.tree.leaves(of), jax.tree.leaves(ox)):
      np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5 * max(float(np.max(np.abs(a))), 1e-3))
    # Gradients to float32 rounding of the largest of the net's: a bias before a BatchNorm has
    # a gradient of exactly 0 in exact arithmetic, rounding noise (~1e-5 here) in float32.
    for net_f, net_x in zip(grf, grx):
      scale = max(float(np.max(np.abs(a))) for a in jax.tree.leaves(net_f))
      for a, b in zip(jax.tree.leaves(net_f), jax.tree.leaves(net_x)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=2e-5 * scale)


@pytest.mark.parametrize('name', sorted(MATMUL_DTYPE_MODELS))
def test_matmul_dtype_bfloat16_is_the_same_function_under_both_kernel_sets(name):
  """matmul_dtype='bfloat16' takes bf16 operands in the same layers under both kernel sets (the
  rule of gan_jax.kernels.bf16), so the two agree to float32 summation order, not bf16
  rounding; and it differs from float32 matmuls by bf16 rounding."""
  (gf, df), (gx, dx) = _build(name, 'flax', 'bfloat16'), _build(name, 'xla_cpu', 'bfloat16')
  g32, d32 = _build(name, 'flax')
  gv, dv = _variables(gf, df)
  of, _ = _outputs(name, gf, df, gv, dv, train=True)
  ox, _ = _outputs(name, gx, dx, gv, dv, train=True)
  o32, _ = _outputs(name, g32, d32, gv, dv, train=True)
  for a, b in zip(jax.tree.leaves(of[:3]), jax.tree.leaves(ox[:3])):
    assert a.dtype == b.dtype == jnp.float32
    np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4)
  assert float(np.max(np.abs(np.asarray(of[0]) - np.asarray(o32[0])))) > 1e-4  # it did round


def test_unknown_kernels_and_unhonourable_settings_are_config_errors():
  mc = lambda **kw: ml_collections.ConfigDict({'name': 'dcgan', **kw})
  with pytest.raises(ConfigError, match=r"config.model.kernels='cudnn' is not a kernel set; "
                                        r'valid: auto, flax, xla_cpu'):
    build_models(mc(kernels='cudnn'), (28, 28, 1))
  with pytest.raises(ConfigError, match=r"config.model.matmul_dtype='bfloat16' applies to the "
                                        r"models dcgan, mlp, not 'sngan_resnet'"):
    build_models(ml_collections.ConfigDict({'name': 'sngan_resnet', 'matmul_dtype': 'bfloat16',
                                            'kernels': 'flax'}), (28, 28, 1))
  with pytest.raises(ConfigError, match=r"config.model.matmul_dtype='float16' is not a matmul "
                                        r'dtype; valid: float32, bfloat16'):
    build_models(mc(matmul_dtype='float16', kernels='xla_cpu'), (28, 28, 1))


def test_auto_is_xla_cpu_on_the_cpu_only_and_the_bundle_is_one_object_per_setting():
  assert kernels.resolve('auto', 'cpu') == 'xla_cpu'
  assert kernels.resolve('auto', 'gpu') == kernels.resolve('auto', 'tpu') == 'flax'
  assert kernels.resolve('flax', 'cpu') == 'flax' and kernels.resolve('xla_cpu', 'gpu') == 'xla_cpu'
  assert jax.default_backend() == 'cpu'
  assert kernels.module_defs('auto') == kernels.module_defs('xla_cpu')
  assert kernels.module_defs('auto') != kernels.module_defs('flax')
  assert kernels.module_defs('flax') == (nn.Conv, nn.ConvTranspose, nn.BatchNorm, nn.Dense)
  # Two builds of a model are equal modules (jit caches on a TrainState's apply_fn).
  a, b = _build('dcgan', 'auto', 'bfloat16'), _build('dcgan', 'auto', 'bfloat16')
  assert a == b and hash(a[0]) == hash(b[0])


@pytest.mark.parametrize('layer,kw,shape', [
    (nn.Conv, dict(features=4, kernel_size=(3, 3)), (2, 5, 5, 16)),
    (nn.ConvTranspose, dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding=2,
                            transpose_kernel=True), (2, 3, 3, 16)),
    (nn.Dense, dict(features=4), (3, 16))])
def test_bf16_hooks_give_float32_outputs_of_bf16_rounded_operands(layer, kw, shape):
  """The flax hooks of matmul_dtype='bfloat16': the float32 layer on bf16-rounded input and
  kernel (products exact, float32 sums, a float32 bias), returned as float32; an input with
  fewer than bf16.MIN_CHANNELS channels keeps float32 operands."""
  hooks = {nn.Conv: bf16.CONV, nn.ConvTranspose: bf16.CONV_TRANSPOSE, nn.Dense: bf16.DENSE}[layer]
  rs = np.random.RandomState(5)
  x = jnp.asarray(rs.normal(size=shape), jnp.float32)
  ours, ref = layer(**kw, **hooks, bias_init=nn.initializers.normal(1.0)), layer(
      **kw, bias_init=nn.initializers.normal(1.0))
  v = ref.init(jax.random.key(0), x)
  r = lambda t: jnp.asarray(t, jnp.bfloat16).astype(jnp.float32)
  v_r = jax.tree.map(lambda t: t, v)
  v_r['params']['kernel'] = r(v['params']['kernel'])
  y = ours.apply(v, x)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, ref.apply(v_r, r(x)), rtol=1e-5, atol=1e-5)
  assert float(jnp.max(jnp.abs(y - ref.apply(v, x)))) > 1e-4
  few = x[..., :bf16.MIN_CHANNELS - 1]
  v_few = ref.init(jax.random.key(0), few)
  np.testing.assert_array_equal(ours.apply(v_few, few), ref.apply(v_few, few))
