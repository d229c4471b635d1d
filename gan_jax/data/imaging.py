"""One image -> a square uint8 array: mode conversion, centre crop, antialiased resize.

Every record source (`folder.FolderRecords`, `array_file.ArrayRecords`,
`tfds_records.TfdsRecords`) decodes one example and passes it through `to_square`, so a
dataset looks the same to the model whatever file format it came from:

    img (any PIL mode, W x H) --crop--> S x S --convert--> L / RGB --resize--> R x R x C uint8

Choices, and why:
  * Alpha (RGBA, LA, PA, a palette or L/RGB image with a `transparency` entry) is composited
    over WHITE: transparent icons and logos are drawn for a white page; dropping the alpha
    channel instead would expose whatever colour the transparent pixels happen to store.
  * 16-bit grayscale ('I;16*') is scaled by 255/65535. PIL's own `convert('L')` clips it to
    255, which turns most 16-bit images white. Mode 'I' (32-bit int) is treated as 16-bit if
    any value exceeds 255, else as 8-bit; mode 'F' as [0, 1] if its max is <= 1, else as
    [0, 255]; values outside the range are clipped.
  * RGB -> 1 channel uses PIL's ITU-R 601-2 luma, L = R*299/1000 + G*587/1000 + B*114/1000.
  * Crop before resizing, so the aspect ratio is kept; crop='none' stretches instead.
  * Resize with PIL's BICUBIC, which widens its kernel by the scale factor when downscaling
    (antialiasing): a 1-pixel checkerboard becomes flat grey instead of aliasing.
"""

import numpy as np
from PIL import Image

from gan_jax.errors import DataError

CROPS = ('center', 'none')
CHANNELS = (1, 3)

_ALPHA_MODES = ('RGBA', 'LA', 'PA', 'RGBa', 'La')
_SIXTEEN_BIT_MODES = ('I;16', 'I;16L', 'I;16B', 'I;16N')


def check_options(resolution: int, channels: int, crop: str = 'center', crop_size: int = 0,
                  *, allow_zero: bool = False) -> None:
  """Raises DataError naming the bad value and the valid ones.

  Args:
    resolution: output side R; must be a positive int (or 0 = keep, if `allow_zero`).
    channels: 1 or 3 (or 0 = keep, if `allow_zero`).
    crop: one of `CROPS`.
    crop_size: side of the centre crop in input pixels, 0 = the short side; only with
      crop='center'.
    allow_zero: whether 0 ("keep the input's") is valid for `resolution` and `channels`.
  """
  zero = (0,) if allow_zero else ()
  if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or (
      resolution < 0 or (resolution == 0 and not allow_zero)):
    keep = ' or 0 (keep the size)' if allow_zero else ''
    raise DataError(f'resolution={resolution!r} is not valid; use a positive int{keep}')
  if channels not in CHANNELS + zero or isinstance(channels, bool):
    raise DataError(f'channels={channels!r} is not valid; use one of {list(zero + CHANNELS)}'
                    + (' (0 = keep)' if allow_zero else ''))
  if crop not in CROPS:
    raise DataError(f'crop={crop!r} is not valid; use one of {list(CROPS)}')
  if isinstance(crop_size, bool) or not isinstance(crop_size, (int, np.integer)) or (
      crop_size < 0):
    raise DataError(f'crop_size={crop_size!r} is not valid; use an int >= 0 (0 = short side)')
  if crop_size and crop != 'center':
    raise DataError(f"crop_size={crop_size} needs crop='center', got crop={crop!r}; set "
                    'crop_size=0')


def _center_crop(img: Image.Image, crop_size: int) -> Image.Image:
  width, height = img.size
  side = crop_size or min(width, height)
  if side > width or side > height:
    raise DataError(f'crop_size={crop_size} is larger than the image ({width}x{height}); use '
                    f'crop_size <= {min(width, height)} or 0 (short side)')
  left, top = (width - side) // 2, (height - side) // 2
  if (left, top, side, side) == (0, 0, width, height):
    return img
  return img.crop((left, top, left + side, top + side))


def _gray_to_uint8(img: Image.Image) -> Image.Image:
  """Maps the wide grayscale modes ('I;16*', 'I', 'F') to 'L' (see the module docstring)."""
  values = np.asarray(img)
  if img.mode in _SIXTEEN_BIT_MODES:
    scaled = values.astype(np.float32) * (255 / 65535)
  elif img.mode == 'I':
    big = values.size and values.max() > 255
    scaled = values.astype(np.float64) * (255 / 65535 if big else 1.0)
  else:  # 'F'
    finite = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
    scaled = finite * 255 if finite.size and finite.max() <= 1.0 else finite
  return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))  # 2-D -> 'L'


def to_mode(img: Image.Image, channels: int) -> Image.Image:
  """Converts any PIL mode to 'L' (channels=1) or 'RGB' (channels=3), alpha over white."""
  if img.mode in _SIXTEEN_BIT_MODES + ('I', 'F'):
    img = _gray_to_uint8(img)
  has_alpha = img.mode in _ALPHA_MODES or (
      img.mode in ('P', 'L', 'RGB') and 'transparency' in img.info)
  if has_alpha:
    rgba = img.convert('RGBA')
    white = Image.new('RGBA', rgba.size, (255, 255, 255, 255))
    img = Image.alpha_composite(white, rgba).convert('RGB')
  target = 'L' if channels == 1 else 'RGB'
  return img if img.mode == target else img.convert(target)


def to_square(img: Image.Image, resolution: int, channels: int, crop: str = 'center',
              crop_size: int = 0) -> np.ndarray:
  """Turns a PIL image of any mode and size into a square uint8 array.

  Args:
    img: a loaded PIL image (any mode PIL can convert: 1, L, LA, P, PA, RGB, RGBA, CMYK,
      YCbCr, I;16, I, F, ...).
    resolution: output side R > 0.
    channels: C = 1 (luma) or 3 (RGB).
    crop: 'center' = centred square of side `crop_size` (0 = the short side), then resize;
      'none' = resize the whole image to R x R (aspect ratio not kept).
    crop_size: see `crop`; must not exceed either side of the image.

  Returns:
    uint8 [R, R, C].

  Raises:
    DataError: bad `resolution` / `channels` / `crop` / `crop_size` (naming the valid
      values), or a `crop_size` larger than the image (naming both sizes).
  """
  check_options(resolution, channels, crop, crop_size)
  if crop == 'center':
    img = _center_crop(img, crop_size)
  img = to_mode(img, channels)
  if img.size != (resolution, resolution):
    img = img.resize((resolution, resolution), Image.Resampling.BICUBIC)
  array = np.asarray(img, dtype=np.uint8)
  return array[:, :, None] if array.ndim == 2 else array


def convert_array(image: np.ndarray, resolution: int = 0, channels: int = 0,
                  crop: str = 'center', crop_size: int = 0) -> np.ndarray:
  """`to_square` for a decoded uint8 [H, W, C] array (C in 1, 3, 4), with 0 = keep.

  Args:
    image: uint8 [H, W, C] or [H, W]; C = 4 is RGBA (composited over white).
    resolution: output side R, or 0 to keep H x W (then no crop either).
    channels: 1, 3, or 0 to keep C (C = 4 then becomes 3).
    crop, crop_size: as in `to_square`; used only when resizing.

  Returns:
    uint8 [R, R, C'] (or [H, W, C'] when resolution=0); the input itself when nothing changes.
  """
  check_options(resolution, channels, crop, crop_size, allow_zero=True)
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[:, :, None]
  height, width, depth = image.shape
  out_channels = channels or (3 if depth == 4 else depth)
  if (resolution in (0, height) and resolution in (0, width) and out_channels == depth
      and not (resolution and crop_size)):
    return image
  if depth not in (1, 3, 4) or image.dtype != np.uint8:
    raise DataError(f'image of shape {image.shape} ({image.dtype}) is not valid; expected uint8 '
                    '[H, W, C] with C in (1, 3, 4)')
  # uint8 [H, W] / [H, W, 3] / [H, W, 4] become modes 'L' / 'RGB' / 'RGBA'.
  img = Image.fromarray(np.ascontiguousarray(image[:, :, 0] if depth == 1 else image))
  if not resolution:
    array = np.asarray(to_mode(img, out_channels), dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array
  return to_square(img, resolution, out_channels, crop, crop_size)
