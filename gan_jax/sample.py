"""Samples and pictures from a trained run.

  python -m gan_jax.sample --workdir runs/mnist --num 10000 --out samples.npz
  python -m gan_jax.sample --workdir runs/mnist --num 64 --grid samples.png
  python -m gan_jax.sample --samples peer.npz --num 64 --grid peer.png   # any samples file
  python -m gan_jax.sample --workdir runs/mnist --mode=interpolate --grid interp.png
  python -m gan_jax.sample --workdir runs/mnist --mode=nearest --grid nearest.png
  python -m gan_jax.sample --workdir runs/mnist --mode=progress --grid progress.png --gif progress.gif
  python -m gan_jax.sample --workdir runs/mnist_cond --mode=classes --grid classes.png

``--grid`` names the PNG every mode writes:

* ``grid`` (default): ``--num`` samples as a grid (a scatter plot against real points for 2-D
  data); ``--out`` also writes them as an npz: uint8 images ``[N, H, W]`` (``[N, H, W, C]`` for
  colour), or float32 points ``[N, 2]``, under ``samples``.
* ``interpolate``: ``--rows`` latent pairs, one per row, joined by spherical interpolation
  (``gan_jax.latents.slerp``) in ``--steps`` columns from one endpoint to the other.
* ``classes`` (conditional models): one row per class, one fixed latent per column (``--cols``),
  so a column shows one latent drawn as every class.
* ``nearest``: the memorisation check. Each row is one sample, a gap, then its ``--k`` nearest
  *training* images in the evaluation classifier's 128-d feature space
  (``gan_jax.evaluation.classifier``); the distances are printed as a table, and a summary line
  sets the nearest-training-image distances of 1000 further samples beside those of 1000
  held-out test images: samples much closer to the training set than real unseen images are
  copies.
  ``--out`` writes the samples, neighbour indices and distances as an npz.
* ``progress``: the fixed-latent grids that training saved at each eval step
  (``<workdir>/samples/step_*.png``), the first ``--cols`` samples of each as one labelled row per
  step (at most ``--rows`` steps, evenly spaced, first and last kept); ``--gif`` also writes the
  full grids as an animation. 2-D runs tile their scatter plots instead.

The EMA generator is used when the run has one (``--no-ema`` for the raw G). Latents come from
``--seed``, so a command repeats its output. A flag that the chosen mode does not use is an error,
as is every other bad input: one line, exit status 2.

The mnist_* pictures in docs/images/ (but mnist_default_*) come from a 3000-step run of the
classic DCGAN (experiments/mnist_dcgan_classic.py, then experiments/mnist.py):

  python -m gan_jax.sample --workdir runs/mnist_seed0 --mode=interpolate --rows=6 \\
      --grid docs/images/mnist_interpolate.png
  python -m gan_jax.sample --workdir runs/mnist_seed0 --mode=nearest --rows=6 \\
      --grid docs/images/mnist_nearest.png
  python -m gan_jax.sample --workdir runs/mnist_seed0 --mode=progress \\
      --grid docs/images/mnist_progress.png
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from gan_jax import cli, data, errors, images, latents
from gan_jax import run as run_lib
from gan_jax import progress as progress_lib
from gan_jax.progress import progress_picture, saved_grids  # noqa: F401  (public here too)
from gan_jax.evaluation.samples import load_samples

FLAGS = flags.FLAGS
MODES = ('grid', 'interpolate', 'classes', 'nearest', 'progress')

flags.DEFINE_string('mode', 'grid', f'What to draw: {", ".join(MODES)} (see the module docstring).')
flags.DEFINE_string('workdir', None, 'Run directory written by launch.py.')
flags.DEFINE_integer('num', 10000, 'grid: number of samples.')
flags.DEFINE_string('out', None, 'grid: write the samples to this .npz file; nearest: the '
                    'samples, neighbour indices and distances.')
flags.DEFINE_string('grid', None, 'The PNG to write: the sample grid (a scatter plot for 2-D '
                    'data), or the picture of --mode.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
flags.DEFINE_integer('seed', 0, 'Seed of the latents.')
flags.DEFINE_bool('ema', True, 'Use the EMA generator when the run has one.')
flags.DEFINE_string('samples', None, 'Draw --grid from this samples .npz (ours or another '
                    "program's, e.g. the PyTorch peer's) instead of a run.")
flags.DEFINE_integer('steps', 10, 'interpolate: columns per row, endpoints included (>= 2).')
flags.DEFINE_integer('rows', 8, 'interpolate: latent pairs; nearest: samples; progress: at most '
                     'this many eval steps.')
flags.DEFINE_integer('cols', 8, 'classes: latents per class; progress: samples per eval step.')
flags.DEFINE_integer('k', 5, 'nearest: training images shown per sample.')
flags.DEFINE_string('gif', None, 'progress: also write the full grids as an animated GIF here.')

# The flags each mode reads (besides --mode and --grid); passing another one is an error.
_MODE_FLAGS = {
    'grid': ('workdir', 'num', 'out', 'step', 'seed', 'ema', 'samples'),
    'interpolate': ('workdir', 'step', 'seed', 'ema', 'rows', 'steps'),
    'classes': ('workdir', 'step', 'seed', 'ema', 'cols'),
    'nearest': ('workdir', 'step', 'seed', 'ema', 'rows', 'k', 'out'),
    'progress': ('workdir', 'rows', 'cols', 'gif'),
}
# Further samples, and held-out test images, scored for the summary line of --mode=nearest.
_NEAREST_REFERENCE = 1000
_PAD = 2  # images.grid's default gap between images


# The file type each output flag writes.
_SUFFIX = {'out': '.npz', 'grid': '.png', 'gif': '.gif'}


def _check_out_path(path, flag):
  """Refuses, before any work, an output path that names a directory, lacks its flag's suffix
  (numpy would append '.npz' to another name) or lies in a missing directory."""
  suffix = _SUFFIX[flag]
  if os.path.isdir(path):
    raise errors.UserError(f'--{flag}={path} is a directory; pass a file path ending in {suffix}')
  if not path.lower().endswith(suffix):
    raise errors.UserError(f'--{flag}={path} does not end in {suffix}; pass a {suffix} file path')
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise errors.UserError(f'--{flag}={path}: directory {parent} does not exist; create it first')


def _write_npz(path, **arrays):
  """``np.savez_compressed`` to ``path`` (a .npz name), atomically; a failed write is a UserError."""
  with images.atomic_path(path, '.npz') as tmp:
    with open(tmp, 'wb') as f:
      np.savez_compressed(f, **arrays)


def check_mode(mode: str, present=()):
  """Raises UserError for an unknown mode or a flag (in ``present``) the mode does not read."""
  if mode not in MODES:
    raise errors.UserError(f'--mode={mode} is not a mode; valid modes: {", ".join(MODES)}')
  for name in present:
    if name not in _MODE_FLAGS[mode] + ('mode', 'grid'):
      users = [m for m in MODES if name in _MODE_FLAGS[m]]
      raise errors.UserError(f'--{name} does not apply to --mode={mode}; it is read by '
                             f'--mode={" and --mode=".join(users)}')


def _need_picture(mode, grid):
  if not grid:
    raise errors.UserError(f'--mode={mode} needs --grid out.png (the picture to write)')
  _check_out_path(grid, 'grid')


def _at_least(value, flag, low, why=''):
  if value < low:
    raise errors.UserError(f'--{flag}={value} must be >= {low}{why}')


def _restore_images_run(mode, workdir, step):
  """restore_run for the modes that draw images: a 2-D run gets a one-line error."""
  config, shape, exp, state = run_lib.restore_run(workdir, step)
  if len(shape) == 1:
    raise errors.UserError(f'--mode={mode} draws images; the run in {workdir} has 2-D points '
                           f'(config.data.name={config.data.name}); use --mode=grid or progress')
  return config, shape, exp, state


def generate(exp, state, z, use_ema=True, labels=None, chunk: int = 500) -> np.ndarray:
  """G(z) in chunks as numpy (eval mode); ``labels [N]`` go to a conditional G."""
  out = []
  for s in range(0, len(z), chunk):
    kw = {} if labels is None else {'labels': jnp.asarray(labels[s:s + chunk], jnp.int32)}
    out.append(np.asarray(exp.generate_fn(state, jnp.asarray(z[s:s + chunk]), use_ema=use_ema,
                                          **kw)))
  return np.concatenate(out)


def run(workdir, num, out=None, grid=None, step=None, seed=0, use_ema=True):
  """--mode=grid: ``num`` samples to an npz (``out``) and/or a picture (``grid``)."""
  if not workdir:
    raise errors.UserError('--workdir is required: the run directory written by launch.py')
  if num <= 0:
    raise errors.UserError(f'--num={num} must be >= 1')
  if not out and not grid:
    raise errors.UserError('nothing to write: pass --out samples.npz and/or --grid samples.png')
  for path, flag in ((out, 'out'), (grid, 'grid')):
    if path:
      _check_out_path(path, flag)
  config, shape, exp, state = run_lib.restore_run(workdir, step)
  x = exp.sample(state, num, key=jax.random.key(seed), use_ema=use_ema)
  if out:
    arr = x.astype(np.float32) if len(shape) == 1 else images.to_uint8(x)
    if arr.ndim == 4 and arr.shape[-1] == 1:
      arr = arr[..., 0]
    _write_npz(out, samples=arr)
    print(f'wrote {arr.shape} {arr.dtype} samples to {out}')
  if grid:
    if len(shape) == 1:
      src = data.load_source(config.data)
      real = np.asarray(src.draw(src.arrays, jax.random.key(seed), min(num, 5000))['image'])
      images.scatter_png(real, x, grid, title=f'{config.name}')
    else:
      images.save_png(images.grid(x[:num]), grid, scale=progress_lib.SCALE)
    print(f'wrote a picture of {num} samples to {grid}')


def grid_from_file(samples, grid, num):
  """A PNG grid of the first ``num`` images of a samples file."""
  if not grid:
    raise errors.UserError('--samples needs --grid out.png (the picture to write)')
  if num <= 0:
    raise errors.UserError(f'--num={num} must be >= 1')
  _check_out_path(grid, 'grid')
  x = load_samples(samples)
  images.save_png(images.grid(x[:num]), grid, scale=progress_lib.SCALE)
  print(f'wrote a picture of {min(num, len(x))} of the {len(x)} samples in {samples} to {grid}')


# --- interpolate -----------------------------------------------------------------------------

def interpolation_picture(exp, state, rows: int, steps: int, key, use_ema=True) -> np.ndarray:
  """uint8 grid, ``rows`` x ``steps`` images: row i is G along slerp(z0_i, z1_i, t), t = 0..1.

  A conditional G draws row i as class ``i % num_classes``.
  """
  z = latents.interpolation_latents(key, rows, steps, exp.config.model.latent_dim)
  num_classes = getattr(exp, 'num_classes', 0)
  labels = np.repeat(np.arange(rows) % num_classes, steps) if num_classes else None
  return images.grid(generate(exp, state, z, use_ema, labels), ncol=steps)


def interpolate(workdir, grid, rows=8, steps=10, step=None, seed=0, use_ema=True):
  _need_picture('interpolate', grid)
  _at_least(rows, 'rows', 1)
  _at_least(steps, 'steps', 2, ' (each row holds both endpoints)')
  _, _, exp, state = _restore_images_run('interpolate', workdir, step)
  pic = interpolation_picture(exp, state, rows, steps, jax.random.key(seed), use_ema)
  images.save_png(pic, grid, scale=progress_lib.SCALE)
  print(f'wrote {rows} slerp rows of {steps} steps (step {int(state.step)}) to {grid}')


# --- classes ---------------------------------------------------------------------------------

def class_picture(exp, state, cols: int, key, use_ema=True) -> np.ndarray:
  """uint8 grid, one row per class, the same ``cols`` latents in every row, rows labelled
  (``Experiment.row_labels``: with clusters within classes, a row cycles through its class's
  clusters)."""
  labels = exp.row_labels(cols)
  num_classes = len(labels) // cols
  z = jax.random.normal(key, (cols, exp.config.model.latent_dim))
  x = generate(exp, state, jnp.tile(z, (num_classes, 1)), use_ema, labels=labels)
  pic = images.grid(x, ncol=cols)
  pic = np.repeat(np.repeat(pic, progress_lib.SCALE, 0), progress_lib.SCALE, 1)
  h = x.shape[1]
  return images.label_left(pic, [str(c) for c in range(num_classes)], progress_lib.SCALE * (h + _PAD),
                           top=progress_lib.LABEL_TOP)


def classes(workdir, grid, cols=8, step=None, seed=0, use_ema=True):
  _need_picture('classes', grid)
  _at_least(cols, 'cols', 1)
  config, _, exp, state = _restore_images_run('classes', workdir, step)
  if not getattr(exp, 'num_classes', 0):
    valid = ', '.join(m for m in MODES if m != 'classes')
    raise errors.UserError(f'--mode=classes needs a conditional model; this run\'s '
                           f'config.model.name={config.model.name} is unconditional; valid modes: '
                           f'{valid}')
  pic = class_picture(exp, state, cols, jax.random.key(seed), use_ema)
  images.save_png(pic, grid)
  print(f'wrote {exp.data_classes} classes x {cols} latents (step {int(state.step)}) to {grid}')


# --- nearest ---------------------------------------------------------------------------------

def nearest_picture(fake, train_images, train_features, net, k: int):
  """Each fake image beside its ``k`` nearest training images in ``net``'s feature space.

  Args:
    fake: ``[n, H, W, C]`` floats in [-1, 1].
    train_images: ``[m, H, W, C]`` floats in [-1, 1]; ``train_features`` their ``[m, 128]``.
    net: a ``classifier.FeatureNet``.
    k: neighbours per row.

  Returns:
    ``(picture, dist [n, k], idx [n, k])``: uint8 rows ``fake_i, gap, train[idx[i, 0]], ...``,
    scaled by 2 with row numbers on the left; Euclidean feature distances, ascending.
  """
  from gan_jax.evaluation import nearest as nearest_lib
  _, feats = net(fake)
  dist, idx = nearest_lib.nearest_neighbours(feats, train_features, k)
  gap = np.ones_like(fake[:1])  # white in [-1, 1]
  cells = np.concatenate([np.concatenate([fake[i:i + 1], gap, train_images[idx[i]]])
                          for i in range(len(fake))])
  pic = images.grid(cells, ncol=k + 2)
  pic = np.repeat(np.repeat(pic, progress_lib.SCALE, 0), progress_lib.SCALE, 1)
  pic = images.label_left(pic, [str(i) for i in range(len(fake))],
                          progress_lib.SCALE * (fake.shape[1] + _PAD), top=progress_lib.LABEL_TOP)
  return pic, dist, idx


def nearest_table(dist, idx) -> str:
  """The printed table: one line per sample, ``training index: feature distance`` per neighbour."""
  lines = ['row  nearest training images, closest first (training index: feature distance)']
  for i in range(len(dist)):
    lines.append(f'{i:<4d} ' + '   '.join(f'{int(j):>5d}: {d:6.3f}' for j, d in zip(idx[i], dist[i])))
  return '\n'.join(lines)


def _quantiles(d) -> str:
  q = np.percentile(d, [5, 50])
  return f'{q[0]:.3f} / {q[1]:.3f}'


def nearest(workdir, grid, rows=8, k=5, out=None, step=None, seed=0, use_ema=True,
            num_summary=_NEAREST_REFERENCE):
  """--mode=nearest. Returns the table's ``(dist [rows, k], idx [rows, k])``.

  The shown samples are those of ``--mode=grid --num rows`` with the same seed. The summary line
  scores ``num_summary`` further samples and as many held-out test images by the distance to
  their nearest training image.
  """
  from gan_jax.evaluation import classifier, nearest as nearest_lib, suite
  _need_picture('nearest', grid)
  if out:
    _check_out_path(out, 'out')
  _at_least(rows, 'rows', 1)
  _at_least(k, 'k', 1)
  config, shape, exp, state = _restore_images_run('nearest', workdir, step)
  net = classifier.load(config.data.name)
  train_images = suite.load_images(config.data, 'train')
  if train_images.shape[1:] != tuple(shape):
    raise errors.UserError(f'the training images of {config.data.name} have shape '
                           f'{train_images.shape[1:]}, the run generates {tuple(shape)}')
  if k > len(train_images):
    raise errors.UserError(f'--k={k} must lie in [1, {len(train_images)}] (the number of '
                           'training images)')
  _, train_features = net(train_images)
  key = jax.random.key(seed)
  fake = exp.sample(state, rows, key=key, use_ema=use_ema)
  pic, dist, idx = nearest_picture(fake, train_images, train_features, net, k)
  images.save_png(pic, grid)
  print(f'{config.name} step {int(state.step)}: the {k} nearest of {len(train_images)} training '
        f'images of {rows} samples, by Euclidean distance between {net.dataset} classifier '
        f'features ({train_features.shape[1]}-d)')
  print(nearest_table(dist, idx))
  more = exp.sample(state, num_summary, key=jax.random.fold_in(key, 1), use_ema=use_ema)
  gen, _ = nearest_lib.nearest_neighbours(net(more)[1], train_features, 1)
  test_images = suite.load_images(config.data, 'test', num_summary)
  ref, _ = nearest_lib.nearest_neighbours(net(test_images)[1], train_features, 1)
  print(f'distance to the nearest training image, 5th percentile / median: {len(gen)} more '
        f'samples {_quantiles(gen)} (closest {gen.min():.3f}); {len(ref)} held-out test images '
        f'{_quantiles(ref)}. Samples far closer than test images are near-copies.')
  if out:
    arr = images.to_uint8(fake)
    _write_npz(out, samples=arr[..., 0] if arr.shape[-1] == 1 else arr, neighbours=idx,
               distances=dist)
    print(f'wrote samples, neighbours {idx.shape} and distances to {out}')
  print(f'wrote the picture to {grid}')
  return dist, idx


# --- progress --------------------------------------------------------------------------------

def progress(workdir, grid, rows=8, cols=8, gif=None):
  _need_picture('progress', grid)
  if gif:
    _check_out_path(gif, 'gif')
  _at_least(rows, 'rows', 1)
  _at_least(cols, 'cols', 1)
  strip, frames, steps = progress_picture(workdir, rows, cols)
  images.save_png(strip, grid)
  print(f'wrote the samples of eval steps {", ".join(map(str, steps))} to {grid}')
  if gif:
    images.save_gif(frames, gif)
    print(f'wrote {len(frames)} frames to {gif}')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments {argv[1:]}; see --help')
  f = FLAGS
  mode = f.mode
  check_mode(mode, [name for name in ('workdir', 'num', 'out', 'step', 'seed', 'ema', 'samples',
                                      'steps', 'rows', 'cols', 'k', 'gif') if f[name].present])
  if mode == 'grid':
    if f.samples:
      return grid_from_file(f.samples, f.grid, f.num)
    return run(f.workdir, f.num, f.out, f.grid, f.step, f.seed, f.ema)
  if mode == 'interpolate':
    return interpolate(f.workdir, f.grid, f.rows, f.steps, f.step, f.seed, f.ema)
  if mode == 'classes':
    return classes(f.workdir, f.grid, f.cols, f.step, f.seed, f.ema)
  if mode == 'nearest':
    nearest(f.workdir, f.grid, f.rows, f.k, f.out, f.step, f.seed, f.ema)
    return None
  return progress(f.workdir, f.grid, f.rows, f.cols, f.gif)


if __name__ == '__main__':
  cli.run(main)
