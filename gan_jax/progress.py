"""The training-progress picture: a run's saved sample grids, one row per eval step.

``gan_jax.sample --mode=progress`` writes it (and a GIF of the whole grids); training saves the
grids as ``<workdir>/samples/step_*.png`` every ``config.eval_every`` steps, from fixed latents,
so a column follows one latent through training.
"""

import glob
import os
import re

import numpy as np

from gan_jax import errors, images
from gan_jax import workdir as workdir_lib

SCALE = 2  # pixels per image pixel in the saved pictures, as in training's grids
_PAD = 2  # images.grid's default gap between images
LABEL_TOP = SCALE * _PAD // 2  # label bands of height SCALE * (H + _PAD) centre on the rows


def saved_grids(workdir):
  """``[(step, path)]`` of ``<workdir>/samples/step_*.png``, ascending in step."""
  if not workdir:
    raise errors.UserError('--workdir is required: the run directory written by launch.py')
  if not os.path.isdir(workdir):
    raise errors.UserError(f'--workdir={workdir} does not exist; pass the workdir of a run '
                           'started with launch.py')
  found = []
  for path in glob.glob(os.path.join(workdir, 'samples', 'step_*.png')):
    m = re.fullmatch(r'step_(\d+)\.png', os.path.basename(path))
    if m:
      found.append((int(m.group(1)), path))
  if not found:
    raise errors.UserError(f'--workdir={workdir} has no samples/step_*.png (training writes one '
                           'every config.eval_every steps); train it first with launch.py')
  return sorted(found)


def _spread(items, most: int):
  """At most ``most`` of ``items``, evenly spaced, first and last kept."""
  if len(items) <= most:
    return list(items)
  keep = np.unique(np.round(np.linspace(0, len(items) - 1, most)).astype(int))
  return [items[i] for i in keep]


def _read_png(path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as img:
    return np.asarray(img)


def progress_picture(workdir, rows: int = 8, cols: int = 8):
  """(strip, frames, steps) from the grids training saved in ``workdir``.

  For image runs the strip has one row per eval step (at most ``rows``, evenly spaced): the
  first ``cols`` images of that step's grid, the same latents in every row, labelled with the
  step. ``frames`` are the full saved grids, labelled, for a GIF. For 2-D runs the strip tiles
  the saved scatter plots (their titles name the step).
  """
  found = _spread(saved_grids(workdir), rows)
  config, shape = workdir_lib.load_run(workdir)
  steps = [s for s, _ in found]
  pics = [_read_png(p) for _, p in found]
  labels = [f'step {s}' for s in steps]
  width = images.label_width(labels)
  frames = [images.label_left(p, [t], p.shape[0], width=width) for p, t in zip(pics, labels)]
  if len(shape) == 1:
    return images.grid(np.stack([p[..., :3] for p in pics]), ncol=min(4, len(pics))), frames, steps
  n = config.num_grid
  if cols > n:
    raise errors.UserError(f'--cols={cols} exceeds the {n} images of each saved grid '
                           f'(config.num_grid={n})')
  cells = []
  for (_, path), pic in zip(found, pics):
    try:
      cells.append(images.ungrid(pic, n, shape, scale=SCALE)[:cols])
    except ValueError as e:
      raise errors.UserError(f'{path}: {e}; config.num_grid changed during the run?') from None
  strip = images.grid(np.concatenate(cells), ncol=cols)
  strip = np.repeat(np.repeat(strip, SCALE, 0), SCALE, 1)
  strip = images.label_left(strip, labels, SCALE * (shape[0] + _PAD), width=width, top=LABEL_TOP)
  return strip, frames, steps
