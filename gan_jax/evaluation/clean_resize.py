"""clean-fid's "clean" resize to the Inception input size, as matrices (jittable, any backend).

Parmar, Zhang and Zhu (2022), "On Aliased Resizing and Surprising Subtleties in GAN
Evaluation" (CVPR), show that FID moves by several points with the resize library: PyTorch's
and TensorFlow's bilinear resizes alias when they shrink (they read 2 taps whatever the scale),
and resizing after a float-to-uint8 step differs from resizing before it. Their *clean* FID fixes
the pipeline to what PIL does, and so do we:

1. Quantize: generated images are saved as 8-bit files in practice, so fakes are compared the
   same way: floats x in [-1, 1] -> ``clip(round((x + 1) * 127.5), 0, 255)`` as uint8
   (``quantize``; round half to even, numpy's and XLA's rounding). Real uint8 images pass as
   they are.
2. Resize each channel separately as a float32 PIL image (mode 'F') with ``Image.BICUBIC`` to
   ``size x size`` (299 for FID): PIL's separable antialiased bicubic, Keys' cubic kernel with
   a = -0.5, widened by ``in / out`` when shrinking (``bicubic_matrix``); the horizontal pass
   first, then the vertical one.
3. Clip to [0, 255] (bicubic overshoots at edges) and keep float32: no quantization after the
   resize. Grayscale is the one channel repeated thrice.

``clean_resize`` equals clean-fid's ``make_resizer("PIL", False, "bicubic", (299, 299))``
(applied per image) to ~5e-5 on the [0, 255] scale (float32 matrix products; PIL accumulates in
float64 and rounds to float32 after each pass). ``inception.preprocess(..., resize='clean')``
then maps [0, 255] to the network's [-1, 1] with ``x / 127.5 - 1``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

BICUBIC_A = -0.5  # PIL's Keys kernel parameter
BICUBIC_SUPPORT = 2.0

_HIGHEST = jax.lax.Precision.HIGHEST


def quantize(images) -> jax.Array:
  """Floats in [-1, 1] -> uint8 ``clip(round((x + 1) * 127.5), 0, 255)``; uint8 unchanged.

  Jittable; any shape. 0.999 and 1 land on 255, -1 on 0, 0 on 128 (127.5 rounds to even).
  """
  x = jnp.asarray(images)
  if x.dtype == jnp.uint8:
    return x
  return jnp.clip(jnp.round((x.astype(jnp.float32) + 1.0) * 127.5), 0, 255).astype(jnp.uint8)


def _bicubic(x):
  """Keys' cubic with a = -0.5: (a+2)|x|^3 - (a+3)|x|^2 + 1 on [0, 1),
  a (|x|^3 - 5|x|^2 + 8|x| - 4) on [1, 2), 0 beyond (PIL's ``bicubic_filter``)."""
  a = BICUBIC_A
  x = np.abs(x)
  return np.where(x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
                  np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0))


@functools.lru_cache(maxsize=16)
def bicubic_matrix(in_size: int, out_size: int) -> np.ndarray:
  """``R [out, in]`` float64 with ``R @ v`` = PIL's 1-D BICUBIC resize of ``v`` (Resample.c).

  With scale = in / out and f = max(scale, 1) (the kernel widens only when shrinking, which is
  the antialiasing), output pixel o is centred at c = (o + 0.5) scale and reads the sources
  i in [trunc(c - 2 f + 0.5), trunc(c + 2 f + 0.5)) within [0, in) with weight
  ``cubic((i - c + 0.5) / f)``, normalised to sum 1 over the taps that exist (borders
  renormalise rather than clamp or reflect). Read-only (cached).
  """
  scale = in_size / out_size
  f = max(scale, 1.0)
  support = BICUBIC_SUPPORT * f
  r = np.zeros((out_size, in_size))
  for o in range(out_size):
    center = (o + 0.5) * scale
    lo = max(int(center - support + 0.5), 0)  # int(): C's truncation toward zero
    hi = min(int(center + support + 0.5), in_size)
    w = _bicubic((np.arange(lo, hi) - center + 0.5) / f)
    r[o, lo:hi] = w / w.sum()
  r.setflags(write=False)
  return r


def resize(x, size: int) -> jax.Array:
  """Steps 2-3 on ``x [N, H, W, C]`` float in [0, 255] -> ``[N, size, size, C]`` float32 in
  [0, 255]. Jittable (the matrices are constants of the static shapes)."""
  x = jnp.asarray(x, jnp.float32)
  rw = jnp.asarray(bicubic_matrix(x.shape[2], size), jnp.float32)
  rh = jnp.asarray(bicubic_matrix(x.shape[1], size), jnp.float32)
  x = jnp.einsum('pw,nhwc->nhpc', rw, x, precision=_HIGHEST)  # PIL: horizontal pass first
  x = jnp.einsum('oh,nhpc->nopc', rh, x, precision=_HIGHEST)
  return jnp.clip(x, 0.0, 255.0)


@functools.partial(jax.jit, static_argnums=1)
def _clean_resize(x, size: int):
  x = resize(x.astype(jnp.float32), size)
  return jnp.broadcast_to(x, x.shape[:3] + (3,))


def clean_resize(images_uint8, size: int = 299) -> np.ndarray:
  """clean-fid's clean resize (module docstring): ``[N, H, W(, C)]`` uint8 -> ``[N, size, size, 3]``
  float32 in [0, 255].

  Args:
    images_uint8: uint8 images, C = 1 (repeated to 3 channels) or 3. Quantize generated floats
      first with ``quantize``.
    size: output side; 299 for FID.
  """
  x = np.asarray(images_uint8)
  if x.ndim == 3:
    x = x[..., None]
  if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise UserError(f'clean_resize takes uint8 [N, H, W] or [N, H, W, 1|3] images, got '
                    f'{x.dtype} of shape {list(np.shape(images_uint8))}; quantize float '
                    'images in [-1, 1] first with clean_resize.quantize')
  return np.asarray(_clean_resize(jnp.asarray(x), size))
