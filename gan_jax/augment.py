"""Differentiable augmentation of D's inputs (DiffAugment; Zhao et al., 2020).

D sees every image, real and fake, through the same random transformations, drawn afresh for
each image at each step, and G's gradient flows back through them to its fakes. D is then
trained on (and G is judged by) the augmented distributions; because the transformations are
applied to both sides alike and are differentiable, G is still pushed towards the un-augmented
data (the augmentations do not "leak" into the samples, unlike augmenting the reals alone).

Policies (``config.augment``, a comma-separated list, applied in this order):

* ``color``: brightness ``+ (u - 1/2) s``, contrast ``(x - mean) (1 + (u - 1/2) s) + mean``
  and, for RGB, saturation ``(x - gray) (1 + (2u - 1) s) + gray``; at ``s = 1`` the paper's
  ranges (brightness +-0.5, contrast x[0.5, 1.5], saturation x[0, 2]).
* ``translation``: a shift of each image by whole pixels, up to ``s H / 8`` rows and ``s W / 8``
  columns either way, the pixels shifted in are 0.
* ``cutout``: a square of side ``s H / 2`` (rounded) at a random position is set to 0.

``s`` is ``config.augment_strength`` (1 = the paper's magnitudes; 0 = the identity). Images
are ``[B, H, W, C]`` in [-1, 1]; every function is a pure function of its key.
"""

from typing import Sequence, Tuple

import jax
import jax.numpy as jnp

# fold_in tag of the augmentation's key: a separate stream, so turning augmentation on leaves
# the step's other draws (latents, noise, dropout) as they were.
AUG_TAG = 0xa06


def color(x, key, strength: float = 1.0):
  """Brightness, then saturation (RGB only), then contrast, each drawn per image."""
  kb, ks, kc = jax.random.split(key, 3)
  u = lambda k: jax.random.uniform(k, (x.shape[0], 1, 1, 1), x.dtype)
  x = x + (u(kb) - 0.5) * strength
  if x.shape[-1] > 1:
    gray = jnp.mean(x, axis=-1, keepdims=True)
    x = (x - gray) * (1.0 + (2.0 * u(ks) - 1.0) * strength) + gray
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * (1.0 + (u(kc) - 0.5) * strength) + mean


def _shift_matrices(offsets, size: int, dtype):
  """``[B, size, size]`` one-hot matrices M with ``(M @ v)[i] = v[i - offset]`` (0 outside)."""
  i = jnp.arange(size)
  return (i[None, :, None] - offsets[:, None, None] == i[None, None, :]).astype(dtype)


def translation_offsets(key, batch: int, height: int, width: int, strength: float = 1.0):
  """The (rows, columns) shifts ``translation`` draws for ``key``: int32 ``[B]`` each, uniform
  in ``[-r, r]`` with ``r = round(strength * size / 8)``."""
  ky, kx = jax.random.split(key)
  ry, rx = round(strength * height / 8), round(strength * width / 8)
  return (jax.random.randint(ky, (batch,), -ry, ry + 1),
          jax.random.randint(kx, (batch,), -rx, rx + 1))


def translation(x, key, strength: float = 1.0):
  """Each image shifted by ``translation_offsets``; the vacated pixels are 0. A product with
  one-hot shift matrices, so the gradient is the shift back."""
  b, h, w, _ = x.shape
  dy, dx = translation_offsets(key, b, h, w, strength)
  return jnp.einsum('bij,bjkc,blk->bilc', _shift_matrices(dy, h, x.dtype), x,
                    _shift_matrices(dx, w, x.dtype))


def cutout(x, key, strength: float = 1.0):
  """A square of side ``round(strength * H / 2)`` (clipped at the borders) set to 0 in each
  image, its top-left corner uniform over the positions that keep its centre in the image."""
  b, h, w, _ = x.shape
  side = round(strength * h / 2)
  ky, kx = jax.random.split(key)
  top = jax.random.randint(ky, (b, 1, 1), 0, h) - side // 2
  left = jax.random.randint(kx, (b, 1, 1), 0, w) - side // 2
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  inside = (rows >= top) & (rows < top + side) & (cols >= left) & (cols < left + side)
  return x * (~inside)[..., None].astype(x.dtype)


POLICIES = {'color': color, 'translation': translation, 'cutout': cutout}


def parse(policy: str) -> Tuple[str, ...]:
  """``'translation,cutout'`` -> ``('translation', 'cutout')`` in the order they are applied
  (``POLICIES``' order); '' -> (). A ValueError names an unknown policy and the valid ones."""
  names = tuple(p.strip() for p in policy.split(',') if p.strip())
  for p in names:
    if p not in POLICIES:
      raise ValueError(f'config.augment={policy!r}: unknown policy {p!r}; valid: a comma-separated '
                       f'list of {", ".join(POLICIES)} (or empty for none)')
  return tuple(p for p in POLICIES if p in names)


def augment(x, key, policies: Sequence[str], strength: float = 1.0):
  """``x`` through each of ``policies`` (names in ``POLICIES``) with keys split from ``key``;
  ``x`` itself when ``policies`` is empty."""
  for name, k in zip(policies, jax.random.split(key, max(len(policies), 1))):
    x = POLICIES[name](x, k, strength)
  return x
