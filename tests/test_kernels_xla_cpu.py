"""The XLA:CPU kernels (gan_jax/kernels/xla_cpu) against the flax layers they replace and
against the formulas they compute: the drop-in modules' params, functions and gradients, and
each kernel function (the transposed conv's forms, im2col/col2im, the im2col convs, the bf16
matmul and rounding, ``apart``, the BatchNorm VJP)."""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.kernels import xla_cpu
from gan_jax.kernels.xla_cpu import batch_norm, conv, conv_transpose, im2col, matmul
from gan_jax.models import dcgan
from gan_jax.models.layers import bn_scale_init, dcgan_init


def _conv_transpose_reference(x, w):
  """PyTorch ConvTranspose2d(k=4, s=2, p=1) semantics by its definition:
  y[o] += x[i] W[k] for o = 2 i - 1 + k, per spatial axis. x [B,H,W,Ci], w [4,4,Ci,Co]."""
  b, h, wd, _ = x.shape
  y = np.zeros((b, 2 * h, 2 * wd, w.shape[-1]), np.float64)
  for i in range(h):
    for j in range(wd):
      for kh in range(4):
        for kw in range(4):
          oh, ow = 2 * i - 1 + kh, 2 * j - 1 + kw
          if 0 <= oh < 2 * h and 0 <= ow < 2 * wd:
            y[:, oh, ow] += x[:, i, j] @ w[kh, kw]
  return y


def _upconv(layer, cout):
  """PyTorch's ConvTranspose2d(k=4, s=2, p=1, bias=False) in flax terms (the DCGAN's)."""
  return layer(cout, (4, 4), (2, 2), padding=((2, 2), (2, 2)), transpose_kernel=True,
               use_bias=False)


UPCONVS = {'xla_cpu': xla_cpu.ConvTranspose, 'flax': nn.ConvTranspose}


# cout < 16: the tap form's forward; cout >= 16: the window form's
# (conv_transpose.WINDOW_FORWARD_MIN_FEATURES). 'flax' checks flax's own layer with these
# settings: the same function of the same kernel, kernel[kh, kw, cout, cin] = w[kh, kw, cin, cout].
@pytest.mark.parametrize('shape,cout', [((2, 5, 6, 4), 3), ((1, 7, 7, 8), 1), ((2, 3, 4, 5), 16)])
@pytest.mark.parametrize('impl', list(UPCONVS))
def test_upconv_is_pytorch_conv_transpose(shape, cout, impl):
  x = np.random.RandomState(0).randn(*shape).astype(np.float32)
  m = _upconv(UPCONVS[impl], cout)
  params = m.init(jax.random.key(0), x)
  w = np.asarray(params['params']['kernel'], np.float64).swapaxes(2, 3)
  np.testing.assert_allclose(m.apply(params, x), _conv_transpose_reference(x.astype(np.float64), w),
                             atol=1e-5)


@pytest.mark.parametrize('cout,cin,impl', [(2, 3, 'xla_cpu'), (16, 3, 'xla_cpu'),
                                            (1, 32, 'xla_cpu'), (16, 3, 'flax')])
def test_upconv_matches_lax_conv_transpose_gradients(cout, cin, impl):
  """Gradients too: against XLA's own transposed conv (the slow path we replace on CPU).
  'xla_cpu' takes them from the custom VJP (``tap_cotangent`` and two matmuls; at cout 16 after
  the window forward, at cout 2 after the tap forward; at cout 1 from 32 channels the weight
  gradient is ``t_bar^T x``, G's last layer); 'flax' is ``nn.ConvTranspose``, the layer of
  kernels='flax' for backends whose transposed conv is fast."""
  assert (cout >= conv_transpose.WINDOW_FORWARD_MIN_FEATURES) == (cout == 16)
  x = jax.random.normal(jax.random.key(1), (2, 4, 5, cin))
  m = _upconv(UPCONVS[impl], cout)
  params = m.init(jax.random.key(0), x)

  def ours(p, x):
    return jnp.sum(jnp.sin(m.apply(p, x)))

  def ref(p, x):
    k = jnp.swapaxes(p['params']['kernel'], 2, 3)  # [4, 4, Cin, Cout]
    # conv_transpose without transpose_kernel takes the kernel as it is: flipped here,
    # padding k - 1 - p = 2 each side.
    y = jax.lax.conv_transpose(x, k[::-1, ::-1], (2, 2), ((2, 2), (2, 2)),
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return jnp.sum(jnp.sin(y))

  np.testing.assert_allclose(ours(params, x), ref(params, x), rtol=1e-5)
  g1, g2 = jax.grad(ours, argnums=(0, 1))(params, x), jax.grad(ref, argnums=(0, 1))(params, x)
  np.testing.assert_allclose(g1[0]['params']['kernel'], g2[0]['params']['kernel'], atol=1e-5)
  np.testing.assert_allclose(g1[1], g2[1], atol=1e-5)


def test_upconv4x4s2_lax_is_the_kernels_function():
  """``upconv4x4s2_lax`` (what nn.ConvTranspose computes, for benchmarks/upconv_forms.py) and
  the custom-VJP form: one function of the same ``[4, 4, Cout, Cin]`` kernel."""
  rs = np.random.RandomState(2)
  x = jnp.asarray(rs.normal(size=(2, 3, 4, 5)), jnp.float32)
  k = jnp.asarray(rs.normal(size=(4, 4, 3, 5)), jnp.float32)  # [4, 4, Cout, Cin]
  np.testing.assert_allclose(conv_transpose.upconv4x4s2_lax(x, k),
                             conv_transpose.upconv4x4s2(x, k), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_upconv_forms_are_one_function_with_one_gradient(dtype):
  """The tap form, the window form and the custom-VJP mix: the same outputs and gradients (the
  window form by autodiff of its conv), and the mix keeps x's dtype for y and dx and returns a
  float32 kernel gradient under bf16 compute."""
  rs = np.random.RandomState(3)
  x = jnp.asarray(rs.normal(size=(2, 3, 5, 4)), dtype)
  k = jnp.asarray(rs.normal(size=(4, 4, 6, 4)), jnp.float32)  # [4, 4, Cout, Cin]
  g = jnp.asarray(rs.normal(size=(2, 6, 10, 6)), dtype)
  tol = dict(rtol=1e-5, atol=1e-5) if dtype == jnp.float32 else dict(rtol=0.05, atol=0.1)
  outs = {}
  for name, f in [('taps', conv_transpose.upconv4x4s2_taps),
                  ('windows', conv_transpose.upconv4x4s2_windows),
                  ('mix', conv_transpose.upconv4x4s2)]:
    y, pull = jax.vjp(f, x, k)
    outs[name] = (y, *pull(g))
  y, dx, dk = outs['mix']
  assert y.dtype == dx.dtype == dtype and dk.dtype == jnp.float32
  for name in ('taps', 'windows'):
    for a, b in zip(outs['mix'], outs[name]):
      np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), **tol)


@pytest.mark.parametrize('cout', [16, 1])
def test_upconv_bf16_matmuls_give_bf16_rounded_float32_outputs_and_gradients(cout):
  """matmul_dtype='bfloat16': the forward (the tap form's bf16 matmul) is the exact transposed
  conv of the bf16-rounded operands up to float32 sums; it and both gradients are float32 and
  equal the float32 ones to bf16 rounding, not exactly (cout 1: the ``t_bar^T x`` weight
  gradient)."""
  rs = np.random.RandomState(5)
  x = jnp.asarray(rs.normal(size=(2, 3, 4, 32)), jnp.float32)
  k = jnp.asarray(rs.normal(size=(4, 4, cout, 32)), jnp.float32)  # [4, 4, Cout, Cin]
  g = jnp.asarray(rs.normal(size=(2, 6, 8, cout)), jnp.float32)
  y32, pull32 = jax.vjp(conv_transpose.upconv4x4s2, x, k)
  y16, pull16 = jax.vjp(lambda x, k: conv_transpose.upconv4x4s2(x, k, 'bfloat16'), x, k)
  r = lambda t: np.asarray(jnp.asarray(t, jnp.bfloat16).astype(jnp.float32), np.float64)
  np.testing.assert_allclose(y16, _conv_transpose_reference(r(x), r(k).swapaxes(2, 3)), rtol=1e-5,
                             atol=1e-4)
  for a, b in zip([y16, *pull16(g)], [y32, *pull32(g)]):
    assert a.dtype == jnp.float32
    rel = float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))
    assert 1e-5 < rel < 2e-2, rel


def test_tap_cotangent_is_the_adjoint_of_the_overlap_add():
  """<overlap_add(t), g> == <t, tap_cotangent(g)> for random t, g: the gather in the custom VJP
  is exactly the transpose of the tap form's col2im (here through the tap form with an
  identity kernel, which makes its matmul the identity)."""
  rs = np.random.RandomState(4)
  c = 3
  eye = jnp.eye(16 * c).reshape(16 * c, 4, 4, c).transpose(1, 2, 3, 0)  # [4,4,c,16c]
  t = jnp.asarray(rs.normal(size=(2, 4, 3, 4, 4, c)), jnp.float32)
  x = t.reshape(2, 4, 3, 16 * c)  # x @ W == t for this W
  y = conv_transpose.upconv4x4s2_taps(x, eye)
  g = jnp.asarray(rs.normal(size=y.shape), jnp.float32)
  lhs = float(jnp.vdot(y, g))
  rhs = float(jnp.vdot(t, conv_transpose.tap_cotangent(g)))
  assert lhs == pytest.approx(rhs, rel=1e-5)


def _conv_ref(x, k):
  return jax.lax.conv_general_dilated(x, k, (2, 2), ((1, 1), (1, 1)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@pytest.mark.parametrize('c', [1, 3])
@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
def test_conv4x4s2_patches_t_is_the_transposed_patches(c, dtype):
  """Built in the transposed layout, bit for bit the transpose of the im2col patches (bf16
  moved as bits: -0, NaN and Inf too)."""
  x = np.random.RandomState(6).normal(size=(2, 6, 8, c)).astype(np.float32)
  x[0, 1, 2, 0], x[1, 3, 4, 0], x[0, 5, 7, c - 1] = -0.0, np.nan, np.inf
  x = jnp.asarray(x, dtype)
  pt = im2col.conv4x4s2_patches_t(x)
  assert pt.shape == (16 * c, 2 * 3 * 4) and pt.dtype == dtype
  bits = lambda a: np.asarray(jax.lax.bitcast_convert_type(a, jnp.uint16 if dtype == jnp.bfloat16
                                                            else jnp.uint32))
  np.testing.assert_array_equal(bits(pt), bits(im2col.conv4x4s2_patches(x)).T)


def test_conv4x4s2_patches_and_overlap_add_are_im2col_and_its_adjoint():
  rs = np.random.RandomState(5)
  x = jnp.asarray(rs.normal(size=(2, 6, 8, 3)), jnp.float32)
  p = im2col.conv4x4s2_patches(x)
  np.testing.assert_array_equal(p, conv_transpose.tap_cotangent(x).reshape(2 * 3 * 4, 48))
  k = jnp.asarray(rs.normal(size=(4, 4, 3, 5)), jnp.float32)
  np.testing.assert_allclose((p @ k.reshape(48, 5)).reshape(2, 3, 4, 5), _conv_ref(x, k),
                             rtol=1e-5, atol=1e-5)
  t = jnp.asarray(rs.normal(size=(2, 3, 4, 4, 4, 3)), jnp.float32)
  assert float(jnp.vdot(im2col.overlap_add(t), x)) == pytest.approx(
      float(jnp.vdot(t.reshape(p.shape), p)), rel=1e-5)


@pytest.mark.parametrize('jit', [False, True])
def test_conv4x4s2_patches_of_bf16_move_the_bits(jit):
  """bf16 patches (gathered as uint16 bits) are bit for bit the float32 patches of the same
  values, rounded: -0.0, NaN and Inf pass unchanged and the padding is +0.0."""
  rs = np.random.RandomState(10)
  x = jnp.asarray(rs.normal(size=(2, 6, 8, 3)), jnp.float32)
  x = x.at[0, 0, 0, 0].set(-0.0).at[1, 2, 3, 1].set(jnp.nan).at[0, 5, 7, 2].set(-jnp.inf)
  x16 = x.astype(jnp.bfloat16)
  f = jax.jit(im2col.conv4x4s2_patches) if jit else im2col.conv4x4s2_patches
  p16 = f(x16)
  assert p16.dtype == jnp.bfloat16 and p16.shape == (2 * 3 * 4, 48)
  bits = lambda a: np.asarray(jax.lax.bitcast_convert_type(a, jnp.uint16))
  np.testing.assert_array_equal(bits(p16), bits(im2col.conv4x4s2_patches(
      x16.astype(jnp.float32)).astype(jnp.bfloat16)))
  assert np.isnan(np.asarray(p16, np.float32)).sum() == np.isnan(np.asarray(
      im2col.conv4x4s2_patches(x), np.float32)).sum() > 0


@pytest.mark.parametrize('jit', [False, True])
def test_conv4x4s2_is_nn_conv_with_its_gradients(jit):
  """float32: the function and both gradients of XLA's conv (its autodiff) to rounding."""
  rs = np.random.RandomState(6)
  x = jnp.asarray(rs.normal(size=(2, 8, 6, 16)), jnp.float32)
  k = jnp.asarray(rs.normal(size=(4, 4, 16, 8)), jnp.float32)
  loss = lambda f: (lambda x, k: jnp.sum(jnp.sin(f(x, k))))
  ours = jax.value_and_grad(loss(conv.conv4x4s2), argnums=(0, 1))
  ref = jax.value_and_grad(loss(_conv_ref), argnums=(0, 1))
  if jit:
    ours, ref = jax.jit(ours), jax.jit(ref)
  (v1, (dx1, dk1)), (v2, (dx2, dk2)) = ours(x, k), ref(x, k)
  assert float(v1) == pytest.approx(float(v2), rel=1e-4)
  np.testing.assert_allclose(dx1, dx2, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(dk1, dk2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('cin', [1, 3])
def test_conv4x4s2_few_channels_is_nn_conv_with_its_gradients(cin):
  """D's first conv (im2col forward and weight gradient, XLA's input gradient): XLA's conv and
  both of its autodiff gradients, under jit."""
  rs = np.random.RandomState(11)
  x = jnp.asarray(rs.normal(size=(3, 8, 10, cin)), jnp.float32)
  k = jnp.asarray(rs.normal(size=(4, 4, cin, 6)), jnp.float32)
  loss = lambda f: (lambda x, k: jnp.sum(jnp.sin(f(x, k))))
  (v1, (dx1, dk1)) = jax.jit(jax.value_and_grad(loss(conv.conv4x4s2_few_channels),
                                                argnums=(0, 1)))(x, k)
  (v2, (dx2, dk2)) = jax.jit(jax.value_and_grad(loss(_conv_ref), argnums=(0, 1)))(x, k)
  assert float(v1) == pytest.approx(float(v2), rel=1e-5)
  # The forward is a dot, not XLA's conv: float32 sums in another order, so the cotangent
  # cos(y) and with it both gradients differ in the 5th digit (|y| up to ~15 here).
  np.testing.assert_allclose(dx1, dx2, rtol=1e-5, atol=5e-5)
  np.testing.assert_allclose(dk1, dk2, rtol=1e-5, atol=5e-5)
  assert float(jnp.max(jnp.abs(dk1))) > 0.1


def test_conv4x4s2_bf16_is_the_conv_of_bf16_rounded_operands():
  """bfloat16 matmuls: the forward and both gradients are the float64 conv of the bf16-rounded
  x, kernel and cotangent (bf16 products are exact in float32; only sums round)."""
  rs = np.random.RandomState(7)
  x = jnp.asarray(rs.normal(size=(2, 8, 8, 16)), jnp.float32)
  k = jnp.asarray(rs.normal(size=(4, 4, 16, 4)), jnp.float32)
  g = jnp.asarray(rs.normal(size=(2, 4, 4, 4)), jnp.float32)
  r = lambda t: jnp.asarray(t, jnp.bfloat16).astype(jnp.float32)
  y, (dx, dk) = jax.jit(lambda x, k, g: (lambda yp: (yp[0], yp[1](g)))(
      jax.vjp(lambda x, k: conv.conv4x4s2(x, k, 'bfloat16'), x, k)))(x, k, g)
  y_ref, pull = jax.vjp(_conv_ref, r(x), r(k))
  dx_ref, dk_ref = pull(r(g))
  assert y.dtype == dx.dtype == dk.dtype == jnp.float32
  np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(dk, dk_ref, rtol=1e-5, atol=1e-4)
  assert np.abs(np.asarray(y) - np.asarray(_conv_ref(x, k))).max() > 1e-3  # it did round


@pytest.mark.parametrize('cin', [1, 16])
def test_conv4x4s2_module_is_nn_conv_with_its_params(cin):
  """The drop-in Conv with bf16 matmuls: nn.Conv's kernel param (same init, same tree) and
  function, under the im2col path (cin >= bf16.MIN_CHANNELS) and under the few-channel form in
  the input's dtype (cin 1)."""
  x = jnp.asarray(np.random.RandomState(8).normal(size=(2, 8, 8, cin)), jnp.float32)
  ours = xla_cpu.Conv(8, (4, 4), (2, 2), padding=1, use_bias=False, kernel_init=dcgan_init,
                      matmul_dtype='bfloat16')
  ref = nn.Conv(8, (4, 4), (2, 2), padding=((1, 1), (1, 1)), use_bias=False,
                kernel_init=dcgan_init)
  p_ours, p_ref = ours.init(jax.random.key(0), x), ref.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, p_ours) == jax.tree.map(jnp.shape, p_ref)
  np.testing.assert_array_equal(p_ours['params']['kernel'], p_ref['params']['kernel'])
  np.testing.assert_allclose(ours.apply(p_ref, x), ref.apply(p_ref, x), rtol=0.02, atol=0.02)


def test_full_conv_is_nn_conv_valid_with_its_params_and_gradients():
  x = jnp.asarray(np.random.RandomState(9).normal(size=(3, 7, 7, 5)), jnp.float32)
  ours = xla_cpu.Conv(2, (7, 7), padding='VALID', use_bias=False, kernel_init=dcgan_init)
  ref = nn.Conv(2, (7, 7), padding='VALID', use_bias=False, kernel_init=dcgan_init)
  p_ours, p_ref = ours.init(jax.random.key(0), x), ref.init(jax.random.key(0), x)
  np.testing.assert_array_equal(p_ours['params']['kernel'], p_ref['params']['kernel'])
  loss = lambda m: (lambda p, x: jnp.sum(jnp.sin(m.apply(p, x))))
  np.testing.assert_allclose(ours.apply(p_ref, x), ref.apply(p_ref, x), rtol=1e-5, atol=1e-5)
  g1 = jax.grad(loss(ours), argnums=(0, 1))(p_ref, x)
  g2 = jax.grad(loss(ref), argnums=(0, 1))(p_ref, x)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_to_bf16_is_astype_bit_for_bit_nan_inf_ties_and_overflow_included():
  rs = np.random.RandomState(0)
  special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 3.3895314e38, -3.3895314e38,
                      np.finfo(np.float32).max, np.finfo(np.float32).tiny, 1e-40, -1e-45],
                     np.float32)
  ties = np.array([0x3F808000, 0x3F818000, 0xBF808000, 0x3F807FFF, 0x3F808001],
                  np.uint32).view(np.float32)  # halfway cases round to even
  x = jnp.asarray(np.concatenate([rs.normal(size=1000).astype(np.float32) * 10.0 ** rs.randint(
      -30, 30, 1000), special, ties]))
  ours, ref = jax.jit(matmul.to_bf16)(x), x.astype(jnp.bfloat16)
  assert ours.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(ours).view(np.uint16), np.asarray(ref).view(np.uint16))
  # NaNs stay NaN, also those whose bits a bare rounding trick would carry to Inf or to 0.
  nans = np.array([0x7FC00000, 0x7F800001, 0xFFFFFFFF, 0x7FFFFFFF], np.uint32).view(np.float32)
  assert np.isnan(np.asarray(jax.jit(matmul.to_bf16)(jnp.asarray(nans)), np.float32)).all()


def test_physical_transpose_is_the_transpose():
  a = jnp.arange(12.0).reshape(3, 4)
  np.testing.assert_array_equal(jax.jit(matmul.physical_transpose)(a), a.T)


@pytest.mark.parametrize('first', [0.0, np.nan, np.inf])
def test_apart_is_the_function_with_its_gradient(first):
  """``apart(f, x)`` is ``f(x)`` (a conditional whose branches are both ``f``), bit for bit,
  eager and under jit and vmap, and differentiates as ``f`` does."""
  t = np.random.RandomState(4).normal(size=(2, 3, 4, 4, 4, 5)).astype(np.float32)
  t[0, 0, 0, 0, 0, 0] = first
  t = jnp.asarray(t)
  want = np.asarray(im2col.overlap_add(t))
  np.testing.assert_array_equal(matmul.apart(im2col.overlap_add, t), want)
  np.testing.assert_array_equal(jax.jit(lambda v: matmul.apart(im2col.overlap_add, v))(t), want)
  np.testing.assert_array_equal(jax.vmap(lambda v: matmul.apart(im2col.overlap_add, v))(t[None])[0],
                                want)
  g = jnp.asarray(np.random.RandomState(5).normal(size=want.shape), jnp.float32)
  grad = lambda fn: jax.grad(lambda v: jnp.vdot(fn(v), g))(jnp.nan_to_num(t))
  np.testing.assert_array_equal(grad(lambda v: matmul.apart(im2col.overlap_add, v)),
                                grad(im2col.overlap_add))


def test_apart_is_a_conditional_on_the_cpu_only(monkeypatch):
  """On the CPU ``apart`` puts ``f`` in a conditional's branches; on a GPU (whose conditionals
  read the predicate back to the host) and for an empty input it is ``f`` itself."""
  t = jnp.ones((2, 3))
  prims = lambda v: {e.primitive.name for e in jax.make_jaxpr(
      lambda u: matmul.apart(jnp.transpose, u))(v).jaxpr.eqns}
  assert jax.default_backend() == 'cpu' and 'cond' in prims(t)
  assert 'cond' not in prims(jnp.ones((0, 3)))
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  assert 'cond' not in prims(t)
  np.testing.assert_array_equal(matmul.apart(jnp.transpose, t), t.T)


@pytest.mark.parametrize('dtype', [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize('first', [0.0, -0.0, np.nan, -np.inf])
def test_written_transpose_is_the_transpose_bit_for_bit(dtype, first):
  """Whatever the first element (its bits pick the conditional's branch, both the same), eager,
  jit and vmap: the transpose, reshaped, bit for bit (NaN, Inf and -0 included)."""
  a = np.random.RandomState(3).normal(size=(8, 32)).astype(np.float32)
  a[0, 0], a[2, 5], a[7, 31] = first, -0.0, np.nan
  a = jnp.asarray(a, dtype)
  bits = lambda v: np.asarray(jax.lax.bitcast_convert_type(
      v, jnp.uint16 if dtype == jnp.bfloat16 else jnp.uint32))
  want = bits(a.T.reshape(2, 4, 4, 8))
  f = lambda v: matmul.written_transpose(v, (2, 4, 4, 8))
  np.testing.assert_array_equal(bits(f(a)), want)
  np.testing.assert_array_equal(bits(jax.jit(f)(a)), want)
  np.testing.assert_array_equal(bits(jax.vmap(f)(jnp.stack([a, -a]))[0]), want)


def test_bf16_matmul_rounds_inputs_and_cotangent_to_bf16_and_returns_float32():
  rs = np.random.RandomState(0)
  a, b, g = (jnp.asarray(rs.normal(size=s), jnp.float32) for s in ((6, 5), (5, 4), (6, 4)))
  r = lambda t: np.asarray(t.astype(jnp.bfloat16).astype(jnp.float32), np.float64)
  y, pull = jax.vjp(matmul.bf16_matmul, a, b)
  assert y.dtype == jnp.float32
  # Compiled, the backward's layouts differ (an "NT" dot_general, a written-out transpose):
  # the same numbers.
  jit_grads = jax.jit(lambda a, b, g: jax.vjp(matmul.bf16_matmul, a, b)[1](g))(a, b, g)
  np.testing.assert_allclose(jit_grads[0], r(g) @ r(b).T, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(jit_grads[1], r(a).T @ r(g), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(y, r(a) @ r(b), rtol=1e-6, atol=1e-6)  # exact products, f32 sums
  da, db = pull(g)
  assert da.dtype == db.dtype == jnp.float32
  np.testing.assert_allclose(da, r(g) @ r(b).T, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(db, r(a).T @ r(g), rtol=1e-6, atol=1e-6)
  # ...which is within bf16 rounding of the float32 product.
  np.testing.assert_allclose(y, np.asarray(a) @ np.asarray(b), rtol=0.05, atol=0.05)
  with pytest.raises(ValueError, match=r"matmul_dtype='float16'; valid: float32, bfloat16"):
    matmul.matmul(a, b, 'float16')


def _bn_act_reference(x, scale, bias, eps, slope):
  """Training-mode BatchNorm as flax computes it (float64): batch mean, biased variance
  E[x^2] - E[x]^2, then the activation; also returns the two statistics."""
  axes = tuple(range(x.ndim - 1))
  mean = x.mean(axes)
  var = jnp.maximum(0.0, (x * x).mean(axes) - mean * mean)
  y = (x - mean) * (jax.lax.rsqrt(var + eps) * scale) + bias
  return jnp.where(y > 0, y, slope * y), mean, var


def _bn_then_act(x, scale, bias, eps, slope):
  """``batch_norm`` (the hand-written VJP), then the model's activation, as the models compose
  them (``nn.relu(norm(x))``); returns the activation and the two statistics."""
  y, mean, var = batch_norm.batch_norm(x, scale, bias, eps)
  return (nn.relu(y) if slope == 0 else nn.leaky_relu(y, slope)), mean, var


@pytest.mark.parametrize('slope', [0.0, 0.2])
def test_batch_norm_act_matches_autodiff_of_the_definition(slope):
  """The BatchNorm kernel followed by an activation: forward, statistics and the hand-written
  VJP (including non-zero cotangents of the returned mean and var) against float64 autodiff of
  the formula."""
  rs = np.random.RandomState(3)
  x = rs.normal(1.5, 2.0, size=(6, 3, 5, 7))
  scale, bias = rs.normal(1.0, 0.3, size=7), rs.normal(0.0, 0.5, size=7)
  cts = (rs.normal(size=x.shape), rs.normal(size=7), rs.normal(size=7))
  f32 = lambda *a: [jnp.asarray(t, jnp.float32) for t in a]
  out, pull = jax.jit(lambda *a: jax.vjp(lambda *b: _bn_then_act(*b, 1e-5, slope), *a))(
      *f32(x, scale, bias))
  grads = pull(tuple(f32(*cts)))
  with jax.enable_x64():
    ref, pull_ref = jax.vjp(lambda *b: _bn_act_reference(*b, 1e-5, slope),
                            *(jnp.asarray(t, jnp.float64) for t in (x, scale, bias)))
    grads_ref = pull_ref(tuple(jnp.asarray(t, jnp.float64) for t in cts))
  for got, want in zip(list(out) + list(grads), list(ref) + list(grads_ref)):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)
  assert float(jnp.abs(grads[0]).max()) > 0.1 and float(jnp.abs(grads[1]).max()) > 0.1
  assert bool(jnp.any(out[0] < 0)) == (slope > 0)  # the activation ran


@pytest.mark.parametrize('slope', [0.0, 0.2])
def test_fused_batch_norm_is_nn_batch_norm_then_activation(slope):
  """``xla_cpu.BatchNorm`` in training (``batch_norm``'s VJP) + act against ``nn.BatchNorm`` +
  act, the path it takes with ``axis_name`` set: the same variables (names, init), output,
  running statistics and gradients; nothing updated while initialising; eval reads the same
  names."""
  act = (lambda v: nn.relu(v)) if slope == 0 else (lambda v: nn.leaky_relu(v, slope))

  class TwoNorms(nn.Module):
    norm: Any = nn.BatchNorm

    @nn.compact
    def __call__(self, x, train=True):
      for _ in range(2):
        x = act(self.norm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                          scale_init=bn_scale_init)(x))
      return x

  Fused, Flax = functools.partial(TwoNorms, norm=xla_cpu.BatchNorm), TwoNorms

  x = jnp.asarray(np.random.RandomState(5).normal(0.7, 1.3, size=(8, 4, 4, 6)), jnp.float32)
  va, vb = Fused().init(jax.random.key(0), x), Flax().init(jax.random.key(0), x)
  assert jax.tree.structure(va) == jax.tree.structure(vb)
  assert set(va['params']) == {'BatchNorm_0', 'BatchNorm_1'}
  for a, b in zip(jax.tree.leaves(va), jax.tree.leaves(vb)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(va['batch_stats']['BatchNorm_0']['var'], np.ones(6))

  def run(model, v):
    def loss(params):
      y, upd = model.apply({'params': params, 'batch_stats': v['batch_stats']}, x,
                           mutable=['batch_stats'])
      return jnp.sum(jnp.sin(3 * y)), (y, upd)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(v['params'])

  (la, (ya, sa)), ga = run(Fused(), va)
  (lb, (yb, sb)), gb = run(Flax(), vb)
  np.testing.assert_allclose(ya, yb, rtol=1e-6, atol=1e-6)
  # BatchNorm_0's bias gradient sums a cotangent that BatchNorm_1's backward made mean-free
  # per channel: terms of ~1 cancel to ~1e-4, so float32 summation order shows at ~1e-5.
  for a, b in zip(jax.tree.leaves((sa, ga)), jax.tree.leaves((sb, gb))):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)
  assert float(jnp.abs(sa['batch_stats']['BatchNorm_1']['mean']).max()) > 1e-3
  np.testing.assert_array_equal(Fused().apply(va, x, train=False), Flax().apply(vb, x, train=False))


def test_dcgan_fused_batch_norm_matches_the_flax_path():
  """The DCGAN's G and D with ``xla_cpu.BatchNorm`` (one replica) against the same nets taking
  ``nn.BatchNorm`` (``bn_axis_name`` set, under a one-device vmap that binds the axis): the
  same logits/images and updated running statistics."""
  for model, inp in ((dcgan.Generator, jax.random.normal(jax.random.key(1), (4, 100))),
                     (dcgan.Discriminator, jax.random.normal(jax.random.key(2), (4, 28, 28, 1)))):
    fused, flax_bn = model(norm=xla_cpu.BatchNorm), model(bn_axis_name='batch')
    v = fused.init(jax.random.key(0), inp)
    ya, sa = fused.apply(v, inp, mutable=['batch_stats'])
    yb, sb = jax.vmap(lambda i: flax_bn.apply(v, i, mutable=['batch_stats']), axis_name='batch')(
        inp[None])
    np.testing.assert_allclose(ya, yb[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.tree.leaves(sa), jax.tree.leaves(sb)):
      np.testing.assert_allclose(a, b[0], rtol=1e-5, atol=1e-6)


def _same_init(ours, ref, x, **kw):
  """The drop-in's variables are flax's: the same tree, shapes and initial values."""
  va, vb = ours.init(jax.random.key(0), x, **kw), ref.init(jax.random.key(0), x, **kw)
  assert jax.tree.structure(va) == jax.tree.structure(vb)
  for a, b in zip(jax.tree.leaves(va), jax.tree.leaves(vb)):
    np.testing.assert_array_equal(a, b)
  return vb


@pytest.mark.parametrize('layers,kw,shape', [
    ((xla_cpu.Conv, nn.Conv), dict(kernel_size=(3, 3), padding=1), (2, 6, 6, 4)),
    ((xla_cpu.Conv, nn.Conv), dict(kernel_size=(4, 4), strides=(2, 2), padding=1), (2, 8, 8, 3)),
    ((xla_cpu.ConvTranspose, nn.ConvTranspose), dict(kernel_size=(4, 4), strides=(2, 2),
                                                     padding=2), (2, 3, 3, 4)),
    ((xla_cpu.Dense, nn.Dense), {}, (3, 7))])
def test_drop_ins_are_the_flax_layer_outside_their_forms(layers, kw, shape):
  """Shapes and settings the kernels do not cover run flax's own layer: the same variables and,
  bit for bit, the same outputs (a 3x3 conv, a float32 4x4 stride-2 conv, a transposed conv
  without ``transpose_kernel``, a float32 dense layer)."""
  x = jnp.asarray(np.random.RandomState(1).normal(size=shape), jnp.float32)
  ours, ref = (layer(5, **kw) for layer in layers)
  v = _same_init(ours, ref, x)
  np.testing.assert_array_equal(ours.apply(v, x), ref.apply(v, x))


def test_batch_norm_drop_in_is_flax_in_eval_mode_and_without_scale():
  x = jnp.asarray(np.random.RandomState(2).normal(1.0, 2.0, size=(4, 3, 3, 6)), jnp.float32)
  for kw in (dict(use_running_average=True), dict(use_running_average=False, use_scale=False)):
    ours, ref = xla_cpu.BatchNorm(**kw), nn.BatchNorm(**kw)
    v = _same_init(ours, ref, x)
    a, sa = ours.apply(v, x, mutable=['batch_stats'])
    b, sb = ref.apply(v, x, mutable=['batch_stats'])
    np.testing.assert_array_equal(a, b)
    for u, w in zip(jax.tree.leaves(sa), jax.tree.leaves(sb)):
      np.testing.assert_array_equal(u, w)


@pytest.mark.parametrize('use_bias', [False, True])
def test_covered_drop_ins_have_flax_params_with_a_bias_too(use_bias):
  """The covered forms create flax's params (kernel, then bias) and add the bias as flax does."""
  rs = np.random.RandomState(3)
  cases = [
      (xla_cpu.ConvTranspose, nn.ConvTranspose, dict(features=16, kernel_size=(4, 4),
                                                    strides=(2, 2), padding=2,
                                                    transpose_kernel=True), (2, 3, 3, 8)),
      (xla_cpu.Conv, nn.Conv, dict(features=3, kernel_size=(3, 3), padding='VALID'),
       (2, 3, 3, 4))]
  for ours_cls, ref_cls, kw, shape in cases:
    x = jnp.asarray(rs.normal(size=shape), jnp.float32)
    ours = ours_cls(use_bias=use_bias, bias_init=nn.initializers.normal(1.0), **kw)
    ref = ref_cls(use_bias=use_bias, bias_init=nn.initializers.normal(1.0), **kw)
    v = _same_init(ours, ref, x)
    np.testing.assert_allclose(ours.apply(v, x), ref.apply(v, x), rtol=1e-5, atol=1e-5)


def test_dense_bf16_is_bf16_matmul_with_nn_dense_params():
  """``xla_cpu.Dense`` with bf16 matmuls: nn.Dense's params, the float32 product of the
  bf16-rounded operands (``bf16_matmul``), plus the bias."""
  rs = np.random.RandomState(4)
  x = jnp.asarray(rs.normal(size=(3, 20)), jnp.float32)
  ours = xla_cpu.Dense(6, matmul_dtype='bfloat16', bias_init=nn.initializers.normal(1.0))
  v = _same_init(ours, nn.Dense(6, bias_init=nn.initializers.normal(1.0)), x)
  k, b = v['params']['kernel'], v['params']['bias']
  r = lambda t: np.asarray(jnp.asarray(t, jnp.bfloat16).astype(jnp.float32), np.float64)
  y = ours.apply(v, x)
  assert y.dtype == jnp.float32
  np.testing.assert_allclose(y, r(x) @ r(k) + np.asarray(b), rtol=1e-6, atol=1e-6)
  assert np.abs(np.asarray(y) - (np.asarray(x) @ np.asarray(k) + np.asarray(b))).max() > 1e-4
