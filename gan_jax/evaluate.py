"""Evaluates a run, a samples file, or the real-data reference lines; prints one JSON line last.

  python -m gan_jax.evaluate --workdir runs/mnist --num 10000            # EMA G (--no-ema: raw G)
  python -m gan_jax.evaluate --dataset mnist --samples peer.npz           # any samples file
  python -m gan_jax.evaluate --dataset mnist --reference                  # ceiling and noise floor

Runs on images other than 28x28 grayscale (RGB, 32-256 px) get the Inception FID (clean-fid
resizing) and KID, precision/recall, density/coverage in its features, against ``--num`` of
their training images (the weights file of README "Inception FID"). 28x28 images are compared
with ``--num`` images of the dataset's test split through the evaluation classifier (``python -m gan_jax.evaluation.train_classifier``): FD (key ``fd``), the classifier
score, KID (± its std over subsets), precision/recall, density/coverage, classes covered and the
class histogram, each with its sample counts. For 2-D toy runs it reports the mode metrics. For
class-conditional runs the samples are made for balanced labels (``0, 1, ..., K-1, 0, ...``) and
``class_acc`` is the fraction the classifier assigns to the class they were made for.

``--reference`` prints two lines to read every other number against: the *ceiling* (``num``
training images scored like samples; no generator can beat real data by much) and the *noise
floor* (uniform noise in [-1, 1]).
"""

import json
import sys

import jax
import numpy as np
from absl import flags

from gan_jax import cli, data
from gan_jax import run as run_lib
from gan_jax.errors import UserError
from gan_jax.evaluation import modes, samples as samples_lib, suite

FLAGS = flags.FLAGS


def define_flags():
  """The CLI's flags (defined only when run as a command, so importing this module for
  ``evaluate_run`` defines none)."""
  flags.DEFINE_string('workdir', None, 'Run directory written by launch.py.')
  flags.DEFINE_string('samples', None, 'Evaluate this samples .npz instead of a run.')
  flags.DEFINE_string('dataset', None, 'Dataset to compare with (default: the run\'s).')
  flags.DEFINE_bool('reference', False, 'Print the real-data ceiling and the noise floor.')
  flags.DEFINE_integer('num', 10000, 'Generated samples, and real test images, per evaluation.')
  flags.DEFINE_bool('ema', True, 'Use the EMA generator when the run has one.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
  flags.DEFINE_integer('seed', 0, 'Seed of the latents.')
  flags.DEFINE_string('data_dir', '', 'IDX folder of the dataset (default: found as in training).')


_SHOWN = ('fd', 'score', 'kid', 'precision', 'recall', 'density', 'coverage', 'classes_covered',
          'class_acc')


def summary_line(name: str, m) -> str:
  parts = [f'{k} {m[k]:.4g}' if isinstance(m[k], float) else f'{k} {m[k]}' for k in _SHOWN
           if k in m]
  return f'{name}: ' + ', '.join(parts) + f' (N fake {m.get("num_fake")}, real {m.get("num_real")})'


def reference(dataset: str, num: int, data_dir: str = ''):
  cfg = suite.data_config(dataset, directory=data_dir)
  ev = suite.Evaluator.for_dataset(dataset, num, cfg)
  train_images = suite.load_images(cfg, 'train', num, seed=1)
  noise = np.random.RandomState(0).uniform(-1, 1, (num,) + ev.real_images.shape[1:])
  out = {'ceiling': ev(train_images), 'noise': ev(noise.astype(np.float32))}
  print(summary_line(f'{dataset} ceiling (train vs test)', out['ceiling']))
  print(summary_line(f'{dataset} noise floor (uniform)', out['noise']))
  return {'dataset': ev.net.dataset, 'num': num, **out}


def evaluate_run(workdir, num, step=None, seed=0, use_ema=True, dataset=None, data_dir=''):
  config, shape, exp, state = run_lib.restore_run(workdir, step)
  labels = exp.class_labels(num)  # None unless the run is class-conditional
  x = exp.sample(state, num, key=jax.random.key(10_000 + seed), use_ema=use_ema, labels=labels)
  info = {'workdir': workdir, 'step': int(state.step), 'ema': bool(use_ema and
                                                                state.ema_params is not None)}
  if labels is not None:
    info['num_classes'] = exp.num_classes
  labels = exp.classes_of(labels)  # the classes for class_acc; None for label-free clusters
  if len(shape) == 1:  # 2-D mixture: the mode metrics
    src = data.load_source(config.data)
    m = modes.mode_metrics(x, src.info['centers'], src.info['std'])
    return {**info, **m}
  if tuple(shape) != (28, 28, 1) and not dataset:  # RGB or other sizes: the Inception FID
    return {**info, **_inception_evaluator(config, num)(x)}
  cfg = config.data
  if dataset or data_dir:
    cfg = suite.data_config(dataset or config.data.name, directory=data_dir)
  ev = suite.Evaluator.for_dataset(cfg.name, num, cfg)
  return {**info, **ev(x, labels=labels)}


def _inception_evaluator(config, num):
  """The Inception FID against ``num`` of the run's training images; a UserError naming the
  conversion command when the weights file is missing."""
  from gan_jax.evaluation import inception, inception_eval  # pylint: disable=g-import-not-at-top
  path = inception.default_weights_path()
  source, records = run_lib.load_data(config)
  ev = inception_eval.InceptionEvaluator.for_rgb_data(
      lambda: run_lib.pick_real_images(config, source, records, num), weights_path=path,
      say=lambda _: None)
  if ev is None:
    raise UserError(f'no Inception weights at {path} for the FID of '
                    f'{config.data.name!r} images; convert them with '
                    f'{inception.convert_command(path)}')
  return ev


def evaluate_samples(path, dataset, num, data_dir=''):
  if not dataset:
    raise UserError('--samples needs --dataset (e.g. --dataset mnist) to compare with')
  x = samples_lib.load_samples(path)
  if x.shape[1:] != (28, 28, 1):  # before loading the reference set
    raise UserError(f'--samples={path} holds images of shape {x.shape[1:]}; the {dataset} '
                    'classifier takes (28, 28, 1)')
  n = min(num, len(x))
  ev = suite.Evaluator.for_dataset(dataset, n, suite.data_config(dataset, directory=data_dir))
  if len(x) < num:
    # FD and KID are biased at small N (FD grows as N falls): a figure at another N is not
    # comparable with ours at --num, so say so where it cannot be missed.
    print(f'warning: {path} holds {len(x)} samples, fewer than --num={num}: the metrics use all '
          f'{len(x)} (and as many real images), and FD/KID at N = {len(x)} are not comparable '
          f'with figures at N = {num}', file=sys.stderr)
  return {'samples': path, **ev(x[:n])}


def main(argv):
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {argv[1:]}; see --help')
  if FLAGS.num < 2:
    raise UserError(f'--num={FLAGS.num} must be >= 2 (covariances and k-NN need several samples)')
  chosen = [f for f in ('workdir', 'samples', 'reference') if getattr(FLAGS, f)]
  if len(chosen) != 1:
    raise UserError('pass exactly one of --workdir RUN, --samples FILE.npz (with --dataset) or '
                    f'--reference (with --dataset); got {chosen or "none"}')
  if FLAGS.reference:
    if not FLAGS.dataset:
      raise UserError('--reference needs --dataset (e.g. --dataset mnist)')
    result = reference(FLAGS.dataset, FLAGS.num, FLAGS.data_dir)
  elif FLAGS.samples:
    result = evaluate_samples(FLAGS.samples, FLAGS.dataset, FLAGS.num, FLAGS.data_dir)
    print(summary_line(FLAGS.samples, result))
  else:
    result = evaluate_run(FLAGS.workdir, FLAGS.num, FLAGS.step, FLAGS.seed, FLAGS.ema,
                          FLAGS.dataset, FLAGS.data_dir)
    if 'fd' in result:
      print(summary_line(f'{FLAGS.workdir} step {result["step"]}', result))
  print(json.dumps(result, default=float))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
