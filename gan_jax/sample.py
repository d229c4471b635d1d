"""Samples from a trained run.

  python -m gan_jax.sample --workdir runs/mnist --num 10000 --out samples.npz
  python -m gan_jax.sample --workdir runs/mnist --num 64 --grid samples.png
  python -m gan_jax.sample --samples peer.npz --num 64 --grid peer.png   # any samples file

The npz holds uint8 images ``[N, H, W]`` (``[N, H, W, C]`` for colour) under ``samples``; for
2-D data it holds float32 points ``[N, 2]``. The EMA generator is used when the run has one
(``--no-ema`` for the raw G). Latents come from ``--seed``, so a command repeats its output.
"""

import os

import jax
import numpy as np
from absl import flags

from gan_jax import cli, data, errors, images, train
from gan_jax.evaluation.samples import load_samples

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'Run directory written by launch.py.')
flags.DEFINE_integer('num', 10000, 'Number of samples.')
flags.DEFINE_string('out', None, 'Write samples to this .npz file.')
flags.DEFINE_string('grid', None, 'Write a PNG grid (or a scatter plot for 2-D data) here.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
flags.DEFINE_integer('seed', 0, 'Seed of the latents.')
flags.DEFINE_bool('ema', True, 'Use the EMA generator when the run has one.')
flags.DEFINE_string('samples', None, 'Draw --grid from this samples .npz (ours or another '
                    "program's, e.g. the PyTorch peer's) instead of a run.")


def _check_out_path(path, flag):
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise errors.UserError(f'--{flag}={path}: directory {parent} does not exist; create it first')


def run(workdir, num, out=None, grid=None, step=None, seed=0, use_ema=True):
  if not workdir:
    raise errors.UserError('--workdir is required: the run directory written by launch.py')
  if num <= 0:
    raise errors.UserError(f'--num={num} must be >= 1')
  if not out and not grid:
    raise errors.UserError('nothing to write: pass --out samples.npz and/or --grid samples.png')
  for path, flag in ((out, 'out'), (grid, 'grid')):
    if path:
      _check_out_path(path, flag)
  config, shape, exp, state = train.restore_run(workdir, step)
  x = exp.sample(state, num, key=jax.random.key(seed), use_ema=use_ema)
  if out:
    arr = x.astype(np.float32) if len(shape) == 1 else images.to_uint8(x)
    if arr.ndim == 4 and arr.shape[-1] == 1:
      arr = arr[..., 0]
    np.savez_compressed(out, samples=arr)
    print(f'wrote {arr.shape} {arr.dtype} samples to {out}')
  if grid:
    if len(shape) == 1:
      src = data.load_source(config.data)
      real = np.asarray(src.draw(src.arrays, jax.random.key(seed), min(num, 5000))['image'])
      images.scatter_png(real, x, grid, title=f'{config.name}')
    else:
      images.save_png(images.grid(x[:num]), grid, scale=2)
    print(f'wrote a picture of {num} samples to {grid}')


def grid_from_file(samples, grid, num):
  """A PNG grid of the first ``num`` images of a samples file."""
  if not grid:
    raise errors.UserError('--samples needs --grid out.png (the picture to write)')
  if num <= 0:
    raise errors.UserError(f'--num={num} must be >= 1')
  _check_out_path(grid, 'grid')
  x = load_samples(samples)
  images.save_png(images.grid(x[:num]), grid, scale=2)
  print(f'wrote a picture of {min(num, len(x))} of the {len(x)} samples in {samples} to {grid}')


def main(argv):
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments {argv[1:]}; see --help')
  if FLAGS.samples:
    return grid_from_file(FLAGS.samples, FLAGS.grid, FLAGS.num)
  run(FLAGS.workdir, FLAGS.num, FLAGS.out, FLAGS.grid, FLAGS.step, FLAGS.seed, FLAGS.ema)


if __name__ == '__main__':
  cli.run(main)
