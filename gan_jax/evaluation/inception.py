"""InceptionV3 pool3 features (2048-d) for FID on RGB datasets: the *FID Inception* network.

This is the network of TF FID (Heusel et al., 2017) as ported by pytorch-fid, with the weights
``pt_inception-2015-12-05-6726825d.pth``. It differs from torchvision's InceptionV3 in its
blocks: Mixed_5b-5d, 6b-6e and 7b average-pool the pool branch with ``count_include_pad=False``,
Mixed_7c max-pools it (3x3, stride 1, pad 1), every BatchNorm has eps = 0.001, and there is no
auxiliary head. Features are the global average of Mixed_7c: ``[N, 2048]``.

Weights come only from a file the user supplies; nothing is ever downloaded. The file is our own
``.npz`` of flat ``'params/<block>/<conv>/conv/kernel' -> array`` (HWIO kernels, BN ``scale`` /
``bias`` under ``params``, ``mean`` / ``var`` under ``batch_stats``), made once from the
pytorch-fid weights with

  python -m gan_jax.evaluation.convert_inception \
      --src pt_inception-2015-12-05-6726825d.pth --out ~/.cache/gan_jax/inception_fid.npz

Preprocessing (``preprocess``) takes ``[N, H, W, C]`` (or ``[N, H, W]``), C = 1 or 3, any H and
W, either uint8 in [0, 255] or floats in [-1, 1] (our generators' and ``load_samples``' range).
Grayscale is repeated to 3 channels. Floats outside [-1, 1] are an error, because floats in
[0, 255] or [0, 1] would give plausible-looking but wrong features. The resize to 299 x 299 is one
of ``RESIZES`` (one setting, ``resize=``; default ``DEFAULT_RESIZE = 'clean'``):

- ``'clean'``: clean-fid's (Parmar et al., 2022; ``clean_resize``): floats are quantized to uint8
  (``round((x + 1) * 127.5)``), each channel is resized with PIL's antialiased BICUBIC in float32
  and clipped to [0, 255], then mapped to [-1, 1] by ``x / 127.5 - 1``. Use it for numbers to
  compare with clean-fid's (``mode='clean'`` there runs the TF graph, which maps [0, 255] by
  ``(x - 128) / 128``; we keep pytorch-fid's weights and its ``2 (x / 255) - 1``).
- ``'bilinear'``: pytorch-fid's, step by step: to [0, 1] by ``u / 255`` for uint8 or
  ``(x + 1) / 2`` for floats (ToTensor); resize exactly as
  ``F.interpolate(x, (299, 299), mode='bilinear', align_corners=False)``: output pixel ``o``
  reads the source at ``s = max((o + 0.5) * in / out - 0.5, 0)`` and mixes pixels ``floor(s)``
  and ``min(floor(s) + 1, in - 1)`` linearly, with no antialiasing when shrinking; then
  ``2 x - 1`` (``normalize_input``). Use it for numbers to compare with pytorch-fid's.

The two give different FIDs for the same images (the paper's point): report which one you used.
FID itself is ``metrics.fd`` on these features (``inception_fd`` below). Compare FIDs only at
equal N (pytorch-fid's convention is 50 000 generated images against the training set).
Convolutions and the resize run at ``Precision.HIGHEST``, so GPUs do not silently use TF32.
"""

import functools
import os
import zipfile
from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from gan_jax.errors import UserError
from gan_jax.evaluation import classifier, clean_resize, metrics

RESOLUTION = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3
FORMAT = 'gan_jax.inception_fid.v1'
FORMAT_KEY = '__format__'
WEIGHTS_FILE = 'inception_fid.npz'
PTH_NAME = 'pt_inception-2015-12-05-6726825d.pth'
PTH_URL = ('https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/' + PTH_NAME)

_HIGHEST = jax.lax.Precision.HIGHEST

RESIZES = {
    'clean': 'clean-fid: quantize to uint8, PIL bicubic per channel, antialiased',
    'bilinear': 'pytorch-fid: F.interpolate bilinear, align_corners=False, not antialiased',
}
DEFAULT_RESIZE = 'clean'


def check_resize(resize: str) -> str:
  if resize not in RESIZES:
    raise UserError(f'resize={resize!r}: expected one of ' +
                    ', '.join(f'{k!r} ({v})' for k, v in RESIZES.items()))
  return resize


def convert_command(out: str) -> str:
  return f'python -m gan_jax.evaluation.convert_inception --src {PTH_NAME} --out {out}'


def default_weights_path() -> str:
  """``$GAN_JAX_CACHE/inception_fid.npz`` (else ``~/.cache/gan_jax/inception_fid.npz``)."""
  return os.path.join(classifier.cache_dir(), WEIGHTS_FILE)


# ----------------------------------------------------------------------------------------------
# The network. Module names are pytorch-fid's attribute names, so that its state_dict key
# 'Mixed_6b.branch7x7_2.conv.weight' is our 'params/Mixed_6b/branch7x7_2/conv/kernel'.


class BasicConv(nn.Module):
  """Conv (no bias) -> BatchNorm (eps 0.001, running statistics) -> ReLU."""
  features: int
  kernel: Tuple[int, int]
  stride: int = 1
  padding: Tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    ph, pw = self.padding
    x = nn.Conv(self.features, self.kernel, (self.stride, self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False, precision=_HIGHEST,
                # He init: random-weight nets (tests) keep O(1) activations through 94 layers.
                kernel_init=nn.initializers.variance_scaling(2.0, 'fan_in', 'truncated_normal'),
                name='conv')(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPS, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x):
  # FID blocks exclude the zero padding from the average (torchvision's include it).
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), (2, 2), 'VALID')


class InceptionA(nn.Module):
  """Mixed_5b/5c/5d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + pool_features."""
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(64, (1, 1), name='branch1x1')(x)
    b5 = BasicConv(48, (1, 1), name='branch5x5_1')(x)
    b5 = BasicConv(64, (5, 5), padding=(2, 2), name='branch5x5_2')(b5)
    b3 = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(b3)
    b3 = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_3')(b3)
    bp = BasicConv(self.pool_features, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (stride 2): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 480 + input channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(384, (3, 3), stride=2, name='branch3x3')(x)
    bd = BasicConv(64, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv(96, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = BasicConv(96, (3, 3), stride=2, name='branch3x3dbl_3')(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-6e: 1x1 | 1x7-7x1 | 7x1-1x7-7x1-1x7 | avgpool-1x1 -> 768."""
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c = self.channels_7x7
    b1 = BasicConv(192, (1, 1), name='branch1x1')(x)
    b7 = BasicConv(c, (1, 1), name='branch7x7_1')(x)
    b7 = BasicConv(c, (1, 7), padding=(0, 3), name='branch7x7_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7_3')(b7)
    bd = BasicConv(c, (1, 1), name='branch7x7dbl_1')(x)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name='branch7x7dbl_2')(bd)
    bd = BasicConv(c, (1, 7), padding=(0, 3), name='branch7x7dbl_3')(bd)
    bd = BasicConv(c, (7, 1), padding=(3, 0), name='branch7x7dbl_4')(bd)
    bd = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7dbl_5')(bd)
    bp = BasicConv(192, (1, 1), name='branch_pool')(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (stride 2): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 512 + input channels."""

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv(192, (1, 1), name='branch3x3_1')(x)
    b3 = BasicConv(320, (3, 3), stride=2, name='branch3x3_2')(b3)
    b7 = BasicConv(192, (1, 1), name='branch7x7x3_1')(x)
    b7 = BasicConv(192, (1, 7), padding=(0, 3), name='branch7x7x3_2')(b7)
    b7 = BasicConv(192, (7, 1), padding=(3, 0), name='branch7x7x3_3')(b7)
    b7 = BasicConv(192, (3, 3), stride=2, name='branch7x7x3_4')(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b/7c: 1x1 | 1x1-(1x3,3x1) | 1x1-3x3-(1x3,3x1) | pool-1x1 -> 2048.

  The pool branch: average without padding (Mixed_7b, ``max_pool=False``) or 3x3/1 max pool
  (Mixed_7c, ``max_pool=True``): FID's FIDInceptionE_1 and FIDInceptionE_2.
  """
  max_pool: bool

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv(320, (1, 1), name='branch1x1')(x)
    b3 = BasicConv(384, (1, 1), name='branch3x3_1')(x)
    b3 = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3_2a')(b3),
                          BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3_2b')(b3)], -1)
    bd = BasicConv(448, (1, 1), name='branch3x3dbl_1')(x)
    bd = BasicConv(384, (3, 3), padding=(1, 1), name='branch3x3dbl_2')(bd)
    bd = jnp.concatenate([BasicConv(384, (1, 3), padding=(0, 1), name='branch3x3dbl_3a')(bd),
                          BasicConv(384, (3, 1), padding=(1, 0), name='branch3x3dbl_3b')(bd)], -1)
    if self.max_pool:
      pooled = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3(x)
    bp = BasicConv(192, (1, 1), name='branch_pool')(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """``x [N, H, W, 3]`` in [-1, 1] (already preprocessed; H, W >= 75) -> pool3 ``[N, 2048]``."""

  @nn.compact
  def __call__(self, x):
    x = BasicConv(32, (3, 3), stride=2, name='Conv2d_1a_3x3')(x)  # 299 -> 149
    x = BasicConv(32, (3, 3), name='Conv2d_2a_3x3')(x)  # 147
    x = BasicConv(64, (3, 3), padding=(1, 1), name='Conv2d_2b_3x3')(x)
    x = _max_pool_3x3_s2(x)  # 73
    x = BasicConv(80, (1, 1), name='Conv2d_3b_1x1')(x)
    x = BasicConv(192, (3, 3), name='Conv2d_4a_3x3')(x)  # 71
    x = _max_pool_3x3_s2(x)  # 35
    x = InceptionA(32, name='Mixed_5b')(x)  # 256
    x = InceptionA(64, name='Mixed_5c')(x)  # 288
    x = InceptionA(64, name='Mixed_5d')(x)  # 288
    x = InceptionB(name='Mixed_6a')(x)  # 17 x 17 x 768
    x = InceptionC(128, name='Mixed_6b')(x)
    x = InceptionC(160, name='Mixed_6c')(x)
    x = InceptionC(160, name='Mixed_6d')(x)
    x = InceptionC(192, name='Mixed_6e')(x)
    x = InceptionD(name='Mixed_7a')(x)  # 8 x 8 x 1280
    x = InceptionE(max_pool=False, name='Mixed_7b')(x)  # 2048
    x = InceptionE(max_pool=True, name='Mixed_7c')(x)
    return jnp.mean(x, axis=(1, 2))  # AdaptiveAvgPool2d(1): pool3


# ----------------------------------------------------------------------------------------------
# Preprocessing.


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """``R [out, in]`` float32 with ``R @ v`` = PyTorch's 1-D bilinear resize, align_corners=False.

  Row o reads the source at s = max((o + 0.5) * in / out - 0.5, 0): weight 1 - (s - floor s)
  on floor(s) and s - floor(s) on min(floor(s) + 1, in - 1). Rows sum to 1. The arithmetic is
  PyTorch's CPU kernel's: float32 scale in / out, then s by a fused multiply-add (one rounding
  to float32), so the weights agree with PyTorch's to the last bit rather than to 3e-5.
  """
  f32 = np.float32
  scale = np.float64(f32(in_size) / f32(out_size))
  s = (scale * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5).astype(f32)  # exact, 1 rounding
  s = np.maximum(s, f32(0))
  i0 = np.minimum(np.floor(s).astype(np.int64), in_size - 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  w1 = s - i0.astype(f32)
  r = np.zeros((out_size, in_size), f32)
  np.add.at(r, (np.arange(out_size), i0), f32(1) - w1)
  np.add.at(r, (np.arange(out_size), i1), w1)
  return r


def _as_nhwc(images) -> np.ndarray:
  """Validates the input contract (shape, channels, dtype, range); returns numpy NHWC."""
  x = np.asarray(images)
  valid = 'uint8 in [0, 255] or float in [-1, 1], shaped [N, H, W] or [N, H, W, C] with C = 1 or 3'
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3) or min(x.shape) == 0:
    raise UserError(f'images of shape {list(np.shape(images))}: expected {valid}')
  if x.dtype == np.uint8:
    return x
  if x.dtype.kind != 'f':
    raise UserError(f'images of dtype {x.dtype}: expected {valid}')
  lo, hi = float(np.min(x)), float(np.max(x))
  if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
    raise UserError(f'float images span [{lo:.4g}, {hi:.4g}]: expected {valid} (pass [0, 255] '
                    'images as uint8, and map [0, 1] floats to [-1, 1] with 2 x - 1)')
  return x


def _bilinear(x, size: int):
  """uint8 or [-1, 1] floats -> pytorch-fid's bilinear resize, in [-1, 1]."""
  if x.dtype == jnp.uint8:
    x = x.astype(jnp.float32) / 255.0
  else:
    x = (x.astype(jnp.float32) + 1.0) / 2.0
  rh = jnp.asarray(bilinear_matrix(x.shape[1], size), jnp.float32)
  rw = jnp.asarray(bilinear_matrix(x.shape[2], size), jnp.float32)
  x = jnp.einsum('oh,nhwc->nowc', rh, x, precision=_HIGHEST)
  x = jnp.einsum('pw,nowc->nopc', rw, x, precision=_HIGHEST)
  return 2.0 * x - 1.0


def _clean(x, size: int):
  """uint8 or [-1, 1] floats -> clean-fid's quantize + bicubic resize, in [-1, 1]."""
  x = clean_resize.resize(clean_resize.quantize(x).astype(jnp.float32), size)
  return x / 127.5 - 1.0


@functools.partial(jax.jit, static_argnums=(1, 2))
def _preprocess(x, size: int, resize: str):
  x = _clean(x, size) if resize == 'clean' else _bilinear(x, size)
  return jnp.broadcast_to(x, x.shape[:3] + (3,))  # grayscale: the one channel thrice


def preprocess(images, size: int = RESOLUTION, resize: str = DEFAULT_RESIZE) -> jax.Array:
  """The network's input (module docstring): images -> ``[N, size, size, 3]`` in [-1, 1].

  Args:
    images: uint8 in [0, 255] or floats in [-1, 1]; ``[N, H, W]`` or ``[N, H, W, 1|3]``.
    size: output side; 299 for FID (other values only for tests).
    resize: ``'clean'`` (clean-fid) or ``'bilinear'`` (pytorch-fid); see ``RESIZES``.
  """
  return _preprocess(jnp.asarray(_as_nhwc(images)), size, check_resize(resize))


# ----------------------------------------------------------------------------------------------
# Weights: our flat .npz format.


def flatten(variables) -> Dict[str, np.ndarray]:
  """``{'params': {'Mixed_5b': {...}}}`` -> ``{'params/Mixed_5b/.../kernel': array}``."""
  flat = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(variables)[0]:
    flat['/'.join(str(k.key) for k in path)] = np.asarray(leaf)
  return flat


def unflatten(flat: Dict[str, np.ndarray]) -> Dict:
  tree = {}
  for name, value in flat.items():
    node = tree
    *parents, leaf = name.split('/')
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


@functools.lru_cache(maxsize=1)
def expected_shapes() -> Dict[str, Tuple[int, ...]]:
  """Every entry of the weight file: flat name -> shape (from the module, not a hand list)."""
  abstract = jax.eval_shape(FIDInceptionV3().init, jax.random.key(0),
                            jnp.zeros((1, RESOLUTION, RESOLUTION, 3), jnp.float32))
  return {'/'.join(str(k.key) for k in path): tuple(leaf.shape)
          for path, leaf in jax.tree_util.tree_flatten_with_path(abstract)[0]}


def check_weights(flat: Dict[str, np.ndarray], where: str) -> None:
  """A UserError naming ``where`` if ``flat`` lacks, adds or misshapes any expected entry."""
  want = expected_shapes()
  missing = sorted(set(want) - set(flat))
  extra = sorted(set(flat) - set(want))
  if missing or extra:
    raise UserError(f'{where}: {len(missing)} missing entries {missing[:3]}, {len(extra)} '
                    f'unexpected entries {extra[:3]}; expected the {len(want)} FID InceptionV3 '
                    'tensors (e.g. params/Conv2d_1a_3x3/conv/kernel)')
  bad = [(k, tuple(flat[k].shape), want[k]) for k in sorted(want)
         if tuple(flat[k].shape) != want[k]]
  if bad:
    k, got, exp = bad[0]
    raise UserError(f'{where}: {len(bad)} entries have the wrong shape, e.g. {k} is {list(got)}, '
                    f'expected {list(exp)}')


def save_weights(variables_or_flat, path: str, **metadata: str) -> None:
  """Writes our ``.npz`` (checked against the module first), atomically."""
  flat = variables_or_flat
  if 'params' in flat and isinstance(flat['params'], dict):
    flat = flatten(flat)
  flat = {k: np.asarray(v, np.float32) for k, v in flat.items()}
  check_weights(flat, path)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = path + '.tmp.npz'
  np.savez(tmp, **flat, **{FORMAT_KEY: np.asarray(FORMAT)},
           **{f'__{k}__': np.asarray(str(v)) for k, v in metadata.items()})
  os.replace(tmp, path)


def load_weights(path: str) -> Dict:
  """Our ``.npz`` -> Flax variables ``{'params': ..., 'batch_stats': ...}``; UserError if absent
  or not ours (the message names the path and the conversion command)."""
  if not os.path.isfile(path):
    raise UserError(f'Inception weights {path} not found (nothing is downloaded); get '
                    f'{PTH_NAME} from pytorch-fid and convert it once: {convert_command(path)}')
  try:
    with np.load(path, allow_pickle=False) as f:
      flat = {k: f[k] for k in f.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise UserError(f'Inception weights {path} are not a readable .npz ({type(e).__name__}); '
                    f'make them with: {convert_command(path)}') from None
  fmt = flat.pop(FORMAT_KEY, None)
  if fmt is None or str(fmt) != FORMAT:
    raise UserError(f'Inception weights {path} have format {None if fmt is None else str(fmt)!r}, '
                    f'expected {FORMAT!r}; make them with: {convert_command(path)}')
  flat = {k: v for k, v in flat.items() if not k.startswith('__')}
  check_weights(flat, path)
  return unflatten({k: jnp.asarray(v, jnp.float32) for k, v in flat.items()})


def random_weights(seed: int = 0) -> Dict[str, np.ndarray]:
  """A flat weight dict like a converted file's, drawn with numpy (no jit, instant)."""
  rng = np.random.default_rng(seed)
  flat = {}
  for k, shape in sorted(expected_shapes().items()):
    if k.endswith('/kernel'):
      v = rng.standard_normal(shape, np.float32) * np.float32(np.sqrt(2.0 / np.prod(shape[:3])))
    elif k.endswith('/var'):
      v = rng.uniform(0.5, 1.5, shape)
    elif k.endswith('/scale'):
      v = rng.uniform(0.8, 1.2, shape)
    else:  # BN bias and mean
      v = 0.1 * rng.standard_normal(shape)
    flat[k] = v.astype(np.float32)
  return flat


# ----------------------------------------------------------------------------------------------
# Features and FID.


@jax.jit
def _pool3(variables, x):
  return FIDInceptionV3().apply(variables, x)


class InceptionFeatures:
  """FID Inception pool3 features: ``InceptionFeatures.load(path).features(images)``."""

  def __init__(self, variables: Dict, resolution: int = RESOLUTION,
               resize: str = DEFAULT_RESIZE):
    """``variables``: ``{'params', 'batch_stats'}`` of ``FIDInceptionV3``. ``resolution`` other
    than 299 is for fast tests only; it is not FID. ``resize``: one of ``RESIZES``."""
    self.variables = variables
    self.resolution = resolution
    self.resize = check_resize(resize)

  @classmethod
  def load(cls, path: Optional[str] = None, resize: str = DEFAULT_RESIZE) -> 'InceptionFeatures':
    """From our ``.npz`` (default ``default_weights_path()``)."""
    return cls(load_weights(path or default_weights_path()), resize=resize)

  @classmethod
  def random(cls, seed: int = 0, resolution: int = RESOLUTION,
             resize: str = DEFAULT_RESIZE) -> 'InceptionFeatures':
    """Random weights, for tests only: He-normal kernels and BatchNorm scale, bias, mean and
    variance drawn around 1, 0, 0, 1 (so that every term of the BN formula matters)."""
    return cls(unflatten({k: jnp.asarray(v) for k, v in random_weights(seed).items()}),
               resolution, resize)

  def features(self, images, batch_size: int = 50, progress: bool = False) -> np.ndarray:
    """pool3 features ``[N, 2048]`` float32 of ``images`` (contract: ``preprocess``).

    Runs jitted in batches of exactly ``batch_size`` images: a short last batch (or a set
    smaller than one batch) is zero-padded, so one compilation per batch size and image shape
    serves every set. Each image's features are independent of its batch (BatchNorm uses
    running statistics). ``progress``: a tqdm bar over the batches (on stderr).
    """
    if batch_size < 1:
      raise UserError(f'batch_size={batch_size}: expected an integer >= 1')
    x = _as_nhwc(images)
    b = batch_size
    starts = range(0, len(x), b)
    if progress:
      starts = tqdm(starts, desc='Inception features', unit='batch', leave=False)
    out = []
    for i in starts:
      chunk = x[i:i + b]
      m = len(chunk)
      if m < b:
        chunk = np.concatenate([chunk, np.zeros((b - m,) + chunk.shape[1:], chunk.dtype)])
      y = _pool3(self.variables, _preprocess(jnp.asarray(chunk), self.resolution, self.resize))
      out.append(np.asarray(y[:m], np.float32))
    return np.concatenate(out)

  __call__ = features


def inception_fd(real, fake, weights_path: Optional[str] = None, batch_size: int = 50,
                 resize: str = DEFAULT_RESIZE) -> float:
  """FID: ``metrics.fd`` of the pool3 features of two image sets (contract: ``preprocess``).

  ``weights_path`` defaults to ``default_weights_path()``; a missing file is a UserError naming
  it and the conversion command. ``resize``: ``'clean'`` (clean-fid's numbers) or
  ``'bilinear'`` (pytorch-fid's). The value depends on the set sizes: compare at equal N.
  """
  net = InceptionFeatures.load(weights_path, resize=resize)
  return metrics.fd(net.features(real, batch_size), net.features(fake, batch_size))
