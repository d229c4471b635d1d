"""DiffAugment (gan_jax/augment.py): each policy against its definition, differentiable,
identity at strength 0, a pure function of its key; and, through spy nets, applied to D's real
and fake inputs alike in the D step and to the fakes G is judged on in the G step."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment, config_base, steps
from gan_jax.errors import ConfigError
from gan_jax.models import mlp
from gan_jax.state import create_state
from spy_optimizers import last_gradient


def _images(shape=(8, 12, 16, 1), seed=0):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, shape), jnp.float32)


def _shift(img, dy, dx):
  """numpy reference: out[i, j] = img[i - dy, j - dx], 0 outside."""
  h, w = img.shape[:2]
  out = np.zeros_like(img)
  for i in range(h):
    for j in range(w):
      if 0 <= i - dy < h and 0 <= j - dx < w:
        out[i, j] = img[i - dy, j - dx]
  return out


def test_translation_is_a_zero_filled_shift_by_the_drawn_offsets_within_range():
  x = _images()  # 12 x 16: rows shift by up to round(12/8) = 2, columns by up to 2
  key = jax.random.key(3)
  out = np.asarray(augment.translation(x, key))
  dy, dx = (np.asarray(o) for o in augment.translation_offsets(key, 8, 12, 16))
  for b in range(8):
    np.testing.assert_allclose(out[b], _shift(np.asarray(x[b]), dy[b], dx[b]), atol=1e-6)
  # Over many draws the offsets fill the range [-2, 2] and go no further; half strength: +-1.
  many = augment.translation_offsets(jax.random.key(4), 4000, 12, 16)
  assert sorted(set(np.asarray(many[0]).tolist())) == [-2, -1, 0, 1, 2]
  half = augment.translation_offsets(jax.random.key(4), 4000, 12, 16, strength=0.5)
  assert sorted(set(np.asarray(half[1]).tolist())) == [-1, 0, 1]


def test_cutout_zeroes_one_square_of_half_the_side_and_keeps_the_rest():
  x = _images((64, 12, 12, 3)) + 3.0  # no pixel is 0 before
  out = np.asarray(augment.cutout(x, jax.random.key(5)))
  x = np.asarray(x)
  full = 0
  for b in range(64):
    hole = out[b, :, :, 0] == 0
    assert (out[b][~hole] == x[b][~hole]).all()
    assert (out[b][hole] == 0).all()  # every channel of a hole pixel
    rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
    assert hole.sum() == len(rows) * len(cols)  # one axis-aligned rectangle...
    assert 0 < len(rows) <= 6 and 0 < len(cols) <= 6  # ...of side at most 12 / 2
    full += hole.sum() == 36
  assert full >= 10  # the whole 6 x 6 square when it lies inside the image


def test_color_maps_each_image_affinely_within_the_papers_ranges():
  x = np.asarray(_images((32, 6, 6, 1)))
  out = np.asarray(augment.color(jnp.asarray(x), jax.random.key(6)))
  for b in range(32):  # grayscale: brightness then contrast, out = a x + c per image
    a, c = np.polyfit(x[b].ravel(), out[b].ravel(), 1)
    np.testing.assert_allclose(a * x[b] + c, out[b], atol=1e-5)
    assert 0.5 <= a <= 1.5
  rgb = np.asarray(_images((32, 6, 6, 3)))
  out = np.asarray(augment.color(jnp.asarray(rgb), jax.random.key(6)))
  gray_dev = lambda v: v - v.mean(-1, keepdims=True)
  ratios = gray_dev(out) / gray_dev(rgb)  # saturation x contrast: one factor per image
  for b in range(32):
    np.testing.assert_allclose(ratios[b], ratios[b].mean(), rtol=1e-3, atol=1e-3)
    assert 0 <= ratios[b].mean() <= 3.0
  assert np.std(ratios.mean((1, 2, 3))) > 0.1


@pytest.mark.parametrize('policies', [('color',), ('translation',), ('cutout',),
                                      ('color', 'translation', 'cutout')])
def test_strength_zero_is_the_identity(policies):
  x = _images((4, 12, 12, 3))
  np.testing.assert_allclose(augment.augment(x, jax.random.key(0), policies, 0.0), x, atol=1e-6)
  assert not np.allclose(augment.augment(x, jax.random.key(0), policies, 1.0), x, atol=1e-3)


@pytest.mark.parametrize('policy', list(augment.POLICIES))
def test_a_fixed_key_gives_the_same_images_and_another_key_others(policy):
  x = _images((16, 12, 12, 1))
  a = augment.augment(x, jax.random.key(1), (policy,))
  np.testing.assert_array_equal(a, augment.augment(x, jax.random.key(1), (policy,)))
  assert not np.array_equal(a, augment.augment(x, jax.random.key(2), (policy,)))


@pytest.mark.parametrize('policy', list(augment.POLICIES))
def test_gradients_flow_through_every_policy_as_its_transpose(policy):
  """Each policy is affine in x for a fixed key: f(x) = A x + c. The input gradient of
  <f(x), w> is A^T w, so <A x, w> = <x, A^T w> for any x, w (and A^T w is not zero)."""
  key = jax.random.key(7)
  x, w = _images((8, 12, 12, 3), 1), _images((8, 12, 12, 3), 2)
  f = lambda v: augment.augment(v, key, (policy,))
  grad = jax.grad(lambda v: jnp.sum(f(v) * w))(x)
  c = f(jnp.zeros_like(x))
  np.testing.assert_allclose(jnp.sum((f(x) - c) * w), jnp.sum(x * grad), rtol=1e-4)
  assert float(jnp.max(jnp.abs(grad))) > 0.1
  if policy == 'translation':  # A^T w: w shifted back (augment gives each policy a split key)
    dy, dx = augment.translation_offsets(jax.random.split(key, 1)[0], 8, 12, 12)
    for b in range(8):
      np.testing.assert_allclose(grad[b], _shift(np.asarray(w[b]), -int(dy[b]), -int(dx[b])),
                                 atol=1e-6)


def test_parse_orders_the_policies_and_names_an_unknown_one():
  assert augment.parse('cutout, translation') == ('translation', 'cutout')
  assert augment.parse('') == ()
  with pytest.raises(ValueError, match=r"unknown policy 'flip'; valid: .*color, translation, cutout"):
    augment.parse('translation,flip')
  c = config_base.base_config()
  c.augment = 'flip'
  with pytest.raises(ConfigError, match="config.augment='flip'"):
    config_base.validate_config(c)
  c.augment, c.augment_strength = 'cutout', -1.0
  with pytest.raises(ConfigError, match=r'config.augment_strength=-1.0 must lie in \[0, 2\]'):
    config_base.validate_config(c)


# ----------------------------------------------------------------------------------------------
# In the train steps, with spy nets: G(z) = a constant image (its bias), D(x) = w.x + c.

H = W = 8  # translation by up to 1 pixel each way: r = 1


def _spy_state(fake_value):
  g = mlp.Generator(out_shape=(H, W, 1), hidden=(), tanh=False)
  d = mlp.Discriminator(hidden=(), pieces=1, input_dropout=0.0, dropout=0.0)
  state = create_state(g, d, last_gradient(), last_gradient(), 2, (H, W, 1), jax.random.key(0))
  g_params = {'Dense_0': {'kernel': jnp.zeros((2, H * W)),
                          'bias': jnp.full((H * W,), fake_value, jnp.float32)}}
  d_params = jax.tree.map(jnp.ones_like, state.d.params)
  return state.replace(g=state.g.replace(params=g_params), d=state.d.replace(params=d_params))


def _kept_share():
  """Under a uniform shift in {-1, 0, 1} per axis, how often each pixel of an 8 x 8 image is
  still inside the image: 1 in the interior, 2/3 on an edge, 4/9 in a corner."""
  edge = np.where((np.arange(H) == 0) | (np.arange(H) == H - 1), 2 / 3, 1.0)
  return np.outer(edge, edge)


@pytest.mark.parametrize('side', ['real', 'fake'])
def test_the_d_step_augments_its_real_and_its_fake_inputs(side):
  """WGAN loss E D(fake) - E D(real) of the linear critic: dL/dw = mean(fake_in) - mean(real_in).
  Ones on one side and zeros on the other: translated, the ones side is 1 inside and 0 where
  a shift moved the border in, so -+dL/dw is the kept share of each pixel (up to the noise of
  4096 draws); without augmentation it is 1 everywhere."""
  ones_fake = side == 'fake'
  state = _spy_state(1.0 if ones_fake else 0.0)
  reals = jnp.zeros((4096, H, W, 1)) if ones_fake else jnp.ones((4096, H, W, 1))
  cfg = steps.StepConfig(loss='wgan', latent_dim=2, augment=('translation',))
  new, _ = steps.d_step(state, reals, jax.random.key(1), cfg)
  sign = 1.0 if ones_fake else -1.0
  seen = sign * np.asarray(new.d.opt_state['grads']['Dense_0']['kernel']).reshape(H, W)
  np.testing.assert_allclose(seen, _kept_share(), atol=0.04)
  plain, _ = steps.d_step(state, reals, jax.random.key(1),
                          dataclasses.replace(cfg, augment=()))
  np.testing.assert_allclose(
      sign * np.asarray(plain.d.opt_state['grads']['Dense_0']['kernel']), 1.0, atol=1e-6)


def test_the_g_step_judges_augmented_fakes_and_its_gradient_flows_back_through_them():
  """G loss -E D(fake_in) with D(x) = 1.x + c: d loss / d G's bias at pixel p is minus the
  share of fakes in which p lands inside the image after the shift, the kept share."""
  state = _spy_state(1.0)
  cfg = steps.StepConfig(loss='wgan', latent_dim=2, augment=('translation',))
  z = jax.random.normal(jax.random.key(2), (4096, 2))
  new, _ = steps.g_step_on_latents(state, z, jax.random.key(3), cfg)
  grad = np.asarray(new.g.opt_state['grads']['Dense_0']['bias']).reshape(H, W)
  np.testing.assert_allclose(-grad, _kept_share(), atol=0.04)
