"""Reading sample files (``.npz`` with key ``samples``) written by us or by other programs."""

import os
import zipfile

import numpy as np

from gan_jax.errors import UserError

VALID = ('uint8 [N,H,W] or [N,H,W,C] (C = 1 or 3) in [0, 255], or float [N,H,W(,C)] in [0, 1] or '
         '[-1, 1]')


def load_samples(path: str, key: str = 'samples') -> np.ndarray:
  """Images from ``path[key]`` as float32 ``[N, H, W, C]`` in [-1, 1].

  Accepts what ``gan_jax.sample`` and the PyTorch peer write (uint8 ``[N, 28, 28]``), channel-last
  ``[N, H, W, 1|3]``, and floats in [0, 1] or [-1, 1]. Anything else, NaN/Inf, or an empty set is
  a UserError naming the file, what it holds and what is valid.
  """
  if not os.path.isfile(path):
    raise UserError(f'--samples={path} does not exist; pass an .npz written by gan_jax.sample')
  try:
    with np.load(path, allow_pickle=False) as f:
      if key not in f.files:
        raise UserError(f'--samples={path} has no array {key!r} (it has {sorted(f.files)}); '
                        f'expected {VALID} under {key!r}')
      x = f[key]
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise UserError(f'--samples={path} is not a readable .npz file ({type(e).__name__}); pass an '
                    '.npz written by gan_jax.sample') from None
  what = f'{x.dtype} array of shape {list(x.shape)}'
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3) or min(x.shape) == 0:
    raise UserError(f'--samples={path} holds a {what}; expected {VALID}')
  if x.dtype == np.uint8:
    return x.astype(np.float32) / 127.5 - 1.0
  if x.dtype.kind != 'f':
    raise UserError(f'--samples={path} holds a {what}; expected {VALID}')
  x = x.astype(np.float32)
  bad = int(np.sum(~np.isfinite(x)))
  if bad:
    raise UserError(f'--samples={path} holds {bad} NaN/Inf values in a {what}; expected finite '
                    'images')
  lo, hi = float(x.min()), float(x.max())
  if lo >= 0.0 and hi <= 1.0:
    return x * 2.0 - 1.0
  if lo >= -1.0 and hi <= 1.0:
    return x
  raise UserError(f'--samples={path} holds floats in [{lo:.3g}, {hi:.3g}]; expected {VALID}')
