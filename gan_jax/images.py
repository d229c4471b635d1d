"""Pictures: sample grids and 2-D scatter plots, written as PNG."""

import contextlib
import math
import os

import numpy as np
from PIL import Image

from gan_jax.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str, suffix: str):
  """Yields a temporary path beside ``path``; on success renames it to ``path``. A failed write
  (a read-only file system, a full disk, a directory in the way) removes the temporary file and
  becomes a one-line UserError naming ``path``: nothing half-written is left behind."""
  tmp = f'{path}.tmp{suffix}'
  try:
    yield tmp
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise UserError(f'cannot write {path} ({e.strerror or e}); pass a writable file path') from None


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
  with atomic_path(path, '.png') as tmp:
    img.save(tmp, format='PNG')


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


def ungrid(picture, n: int, cell_shape, ncol: int = 0, pad: int = 2, scale: int = 1) -> np.ndarray:
  """The inverse of ``grid`` (after ``save_png(..., scale)``): ``n`` uint8 cells ``[n, H, W, C]``.

  Args:
    picture: the uint8 picture, ``[rows, cols]`` or ``[rows, cols, C]``.
    n: how many images the grid holds.
    cell_shape: ``(H, W)`` or ``(H, W, C)`` of one image before scaling.
    ncol, pad: as given to ``grid`` (``ncol=0``: ceil(sqrt(n))).
    scale: the ``save_png`` scale; each cell is subsampled back to ``H x W``.

  Raises:
    ValueError: the picture's size is not the one ``grid`` makes for this layout.
  """
  picture = np.asarray(picture)
  if picture.ndim == 2:
    picture = picture[..., None]
  h, w = cell_shape[:2]
  ncol = ncol or int(math.ceil(math.sqrt(n)))
  nrow = int(math.ceil(n / ncol))
  want = (scale * (nrow * (h + pad) + pad), scale * (ncol * (w + pad) + pad))
  if picture.shape[:2] != want:
    raise ValueError(f'a {picture.shape[0]}x{picture.shape[1]} picture is not a grid of {n} '
                     f'{h}x{w} images (that is {want[0]}x{want[1]})')
  cells = []
  for i in range(n):
    r, q = divmod(i, ncol)
    top, left = scale * (pad + r * (h + pad)), scale * (pad + q * (w + pad))
    cells.append(picture[top:top + scale * h:scale, left:left + scale * w:scale])
  return np.stack(cells)


def label_width(labels) -> int:
  """Pixels ``label_left`` needs for the longest of ``labels`` in Pillow's default font."""
  from PIL import ImageFont
  font = ImageFont.load_default()
  return 8 + max(int(math.ceil(font.getlength(str(s)))) for s in labels)


def label_left(picture, labels, row_height: int, width: int = 0, top: int = 0) -> np.ndarray:
  """Adds a white margin left of ``picture`` with ``labels[i]`` written (black, Pillow's default
  font) at the middle of band ``i`` (``row_height`` pixels each, from ``top``).

  uint8 ``[H, W]``, ``[H, W, 1]`` or ``[H, W, 3]`` in, the same layout out, ``width`` pixels wider
  (``width=0``: ``label_width(labels)``).
  """
  from PIL import ImageDraw, ImageFont
  picture = np.asarray(picture)
  single = picture.ndim == 3 and picture.shape[-1] == 1
  if single:
    picture = picture[..., 0]
  width = width or label_width(labels)
  margin = np.full((picture.shape[0], width) + picture.shape[2:], 255, np.uint8)
  img = Image.fromarray(np.concatenate([margin, picture], axis=1))
  draw = ImageDraw.Draw(img)
  font = ImageFont.load_default()
  for i, text in enumerate(labels):
    y = top + i * row_height + row_height // 2
    draw.text((4, y), str(text), fill=0 if img.mode == 'L' else (0, 0, 0), font=font, anchor='lm')
  out = np.asarray(img)
  return out[..., None] if single else out


def save_gif(frames, path: str, duration_ms: int = 500):
  """Writes uint8 ``[H, W]``/``[H, W, 3]`` frames (equal sizes) as a looping GIF, atomically."""
  imgs = [Image.fromarray(np.asarray(f)[..., 0] if np.asarray(f).ndim == 3 and
                          np.asarray(f).shape[-1] == 1 else np.asarray(f)) for f in frames]
  with atomic_path(path, '.gif') as tmp:
    imgs[0].save(tmp, format='GIF', save_all=True, append_images=imgs[1:], duration=duration_ms,
                 loop=0)
