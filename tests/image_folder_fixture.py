"""Writes a small class-per-folder image dataset whose pixels the tests can predict.

Each image is a plain background with one shape (a circle or a square) of its class's colour,
centred and covering the middle, so after a centre crop and any resize the centre pixel is the
class colour and the corner pixel the background. Sizes (20..90 x 30..70), file formats
(png/jpg/webp/bmp) and PIL modes (RGB, L, I;16, RGBA, LA, P with and without transparency,
CMYK) vary, so the record sources meet every conversion path. Transparent backgrounds are
expected to come out white (alpha composited over white).

Besides the good images it writes one truncated PNG (cut in half), a hidden file, a hidden
folder and a non-image file, which the sources must fail on / skip.
"""

import os

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {
    'red': (220, 30, 30),
    'green': (30, 180, 40),
    'blue': (30, 40, 210),
    'yellow': (230, 220, 40),
    'magenta': (200, 40, 200),
    'cyan': (40, 200, 210),
}
BACKGROUND = (120, 120, 120)
WHITE = (255, 255, 255)

# (PIL mode to save, file formats that can store it, background transparent?)
_KINDS = (
    ('RGB', ('png', 'jpg', 'webp', 'bmp'), False),
    ('L', ('png', 'jpg', 'bmp'), False),
    ('I;16', ('png',), False),
    ('RGBA', ('png', 'webp'), True),
    ('LA', ('png',), True),
    ('P', ('png', 'bmp'), False),
    ('PT', ('png',), True),  # Palette with a transparent index.
    ('CMYK', ('jpg',), False),
)


def luma(rgb) -> int:
  """PIL's RGB -> L value (ITU-R 601-2), the expected gray of a grayscale-saved colour."""
  return Image.new('RGB', (1, 1), tuple(rgb)).convert('L').getpixel((0, 0))


def _draw(size, shape, colour, background, transparent):
  """An RGBA canvas with `shape` in `colour`, centred, covering the middle 60% of the short side."""
  width, height = size
  fill_bg = (0, 0, 0, 0) if transparent else background + (255,)
  img = Image.new('RGBA', size, fill_bg)
  half = 0.3 * min(width, height)
  box = (width / 2 - half, height / 2 - half, width / 2 + half, height / 2 + half)
  draw = ImageDraw.Draw(img)
  (draw.ellipse if shape == 'circle' else draw.rectangle)(box, fill=tuple(colour) + (255,))
  return img


def _encode(canvas: Image.Image, mode: str) -> Image.Image:
  if mode in ('RGBA',):
    return canvas
  if mode == 'LA':
    return canvas.convert('LA')
  rgb = canvas.convert('RGB')
  if mode == 'I;16':
    gray = np.asarray(rgb.convert('L'), np.uint16) * 257  # 8 -> 16 bit, exactly invertible.
    return Image.fromarray(gray)  # uint16 -> mode 'I;16'
  if mode == 'P':
    return rgb.quantize(colors=8)
  if mode == 'PT':
    pal = rgb.quantize(colors=8)
    alpha = np.asarray(canvas)[:, :, 3]
    # The palette index used where the canvas is transparent becomes the transparent one.
    pal.info['transparency'] = int(np.asarray(pal)[alpha == 0][0])
    return pal
  return rgb.convert(mode)


def write_image_folder(root, num_per_class: int = 60,
                       classes=('red', 'green', 'blue', 'yellow'), seed: int = 0) -> dict:
  """Draws `num_per_class` images per class into `root/<class>/`, plus the odd files.

  Args:
    root: folder to write (created if missing).
    num_per_class: good images per class.
    classes: class names, keys of `COLOURS`; one sub-folder each.
    seed: for sizes, shapes and kinds.

  Returns:
    `{'root', 'classes': sorted class names, 'colours': {class: (r, g, b)},
    'counts': {class: good images}, 'num_files': image files the sources should list (good +
    truncated), 'truncated': path of the truncated PNG (inside the first class's folder),
    'files': [{'path', 'class', 'mode', 'format', 'size': (w, h), 'centre': expected RGB at
    the centre, 'corner': expected RGB at the corners of the centre crop}]}`.
  """
  rng = np.random.default_rng(seed)
  root = os.fspath(root)
  files, counts = [], {}
  for name in classes:
    colour = COLOURS[name]
    os.makedirs(os.path.join(root, name), exist_ok=True)
    for i in range(num_per_class):
      mode, formats, transparent = _KINDS[i % len(_KINDS)]
      fmt = formats[(i // len(_KINDS)) % len(formats)]
      size = (int(rng.integers(20, 91)), int(rng.integers(30, 71)))
      shape = ('circle', 'square')[int(rng.integers(2))]
      image = _encode(_draw(size, shape, colour, BACKGROUND, transparent), mode)
      path = os.path.join(root, name, f'{name}_{i:03d}.{fmt}')
      image.save(path, **({'quality': 95} if fmt in ('jpg', 'webp') else {}))
      gray = mode in ('L', 'I;16', 'LA')
      centre, corner = colour, WHITE if transparent else BACKGROUND
      if gray:
        centre, corner = (luma(centre),) * 3, (luma(corner),) * 3
      files.append({'path': path, 'class': name, 'mode': mode, 'format': fmt, 'size': size,
                    'centre': tuple(centre), 'corner': tuple(corner)})
    counts[name] = num_per_class

  # A PNG cut in half: the header parses, decoding the pixels fails.
  truncated = os.path.join(root, classes[0], 'truncated.png')
  whole = os.path.join(root, classes[0], '.whole.png')  # Hidden: must not be listed.
  Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(whole)
  with open(whole, 'rb') as f:
    data = f.read()
  with open(truncated, 'wb') as f:
    f.write(data[:len(data) // 2])
  os.makedirs(os.path.join(root, '.cache'), exist_ok=True)
  Image.new('RGB', (8, 8)).save(os.path.join(root, '.cache', 'thumb.png'))
  with open(os.path.join(root, classes[0], 'notes.txt'), 'w') as f:
    f.write('not an image\n')
  return {
      'root': root,
      'classes': sorted(classes),
      'colours': {name: COLOURS[name] for name in classes},
      'counts': counts,
      'num_files': sum(counts.values()) + 1,
      'truncated': truncated,
      'files': files,
  }
