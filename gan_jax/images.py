"""Pictures: sample grids and 2-D scatter plots, written as PNG."""

import math
import os

import numpy as np
from PIL import Image


def to_uint8(x) -> np.ndarray:
  """Images in [-1, 1] (any float array) -> uint8 in [0, 255], same shape."""
  x = np.asarray(x, np.float32)
  return np.rint((np.clip(x, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def grid(images, ncol: int = 0, pad: int = 2) -> np.ndarray:
  """``[N, H, W, C]`` (uint8, or floats in [-1, 1]) -> one ``[rows*(H+pad)+pad, ..., C]`` uint8 tile."""
  images = np.asarray(images)
  if images.dtype != np.uint8:
    images = to_uint8(images)
  if images.ndim == 3:
    images = images[..., None]
  n, h, w, c = images.shape
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), 255, np.uint8)
  for i in range(n):
    r, q = divmod(i, ncol)
    out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + q * (w + pad):pad + q * (w + pad) + w] = images[i]
  return out


def save_png(array: np.ndarray, path: str, scale: int = 1):
  """Writes a uint8 ``[H, W]``/``[H, W, 1]``/``[H, W, 3]`` array as PNG, atomically."""
  array = np.asarray(array)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  img = Image.fromarray(array)
  if scale > 1:
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
  tmp = f'{path}.tmp.png'
  img.save(tmp)
  os.replace(tmp, path)


def scatter_png(real, fake, path: str, title: str = '', lim=None) -> np.ndarray:
  """Scatter plot of real (grey) vs generated (red) 2-D points; saves a PNG and returns it as an
  ``[H, W, 3]`` uint8 array (for TensorBoard)."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  real, fake = np.asarray(real), np.asarray(fake)
  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  ax.scatter(real[:, 0], real[:, 1], s=2, c='0.6', label='real')
  ax.scatter(fake[:, 0], fake[:, 1], s=2, c='tab:red', alpha=0.6, label='generated')
  if lim is None:
    lim = 1.15 * float(np.abs(real).max())
  ax.set_xlim(-lim, lim)
  ax.set_ylim(-lim, lim)
  ax.set_aspect('equal')
  ax.legend(loc='upper right', fontsize=7, markerscale=4)
  if title:
    ax.set_title(title, fontsize=9)
  fig.tight_layout()
  fig.canvas.draw()
  rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  save_png(rgb, path)
  return rgb
