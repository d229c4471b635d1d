"""Seed variance: trains one config with N seeds, evaluates each, prints mean ± sd per metric.

  python -m gan_jax.seeds --config=experiments/mnist.py --seeds=3              # sequentially
  python -m gan_jax.seeds --config=experiments/mnist.py --seeds=3 --only=$SLURM_ARRAY_TASK_ID
  python -m gan_jax.seeds --config=experiments/mnist.py --seeds=3 --collect    # table only

Seed i trains ``config.seed + i`` into ``<root>/seed<i>`` (``--root``, default
``runs/<config.name>_seeds``); a finished seed is not retrained. On a cluster run one seed per
job with ``--only=i`` (e.g. a SLURM array), then ``--collect`` to print the table. Writes
``<root>/seeds.md`` and ``seeds.json``; the last stdout line is the JSON. ``train_seed`` and
``evaluate_seeds`` are the runner that ``gan_jax.sweep`` uses for each point of a grid.
"""

import json
import os
import time

import numpy as np
from absl import flags
from ml_collections import config_flags

from gan_jax import cli, config_base, evaluate, train
from gan_jax.errors import UserError

FLAGS = flags.FLAGS


def define_flags():
  """The CLI's flags (defined only when run as a command, so importing this module for
  ``train_seed`` / ``evaluate_seeds`` defines none: gan_jax.sweep has flags of the same names)."""
  config_flags.DEFINE_config_file('config', 'experiments/mnist.py', 'Experiment config file.',
                                  lock_config=False)
  flags.DEFINE_integer('seeds', 3, 'Number of seeds.')
  flags.DEFINE_integer('only', None, 'Train just seed index i (one job per seed on a cluster).')
  flags.DEFINE_bool('collect', False, 'Train nothing; evaluate finished seeds and print the table.')
  flags.DEFINE_string('root', None, 'Folder of the seed workdirs (default runs/<name>_seeds).')
  flags.DEFINE_integer('num', 10000, 'Samples per evaluation.')


METRICS = ('fd', 'score', 'kid', 'precision', 'recall', 'density', 'coverage', 'classes_covered',
           'class_acc',
           'modes_covered', 'high_quality', 'kl_uniform')


def seed_config(base, i):
  c = base.copy_and_resolve_references()
  c.seed = base.seed + i
  return c


def seed_workdir(root: str, i: int) -> str:
  return os.path.join(root, f'seed{i}')


def has_checkpoint(workdir: str) -> bool:
  """Whether ``workdir`` holds a checkpoint (a finished, or a stopped, run)."""
  return os.path.exists(os.path.join(workdir, 'checkpoints'))


def train_seed(base, root: str, i: int):
  """Trains seed ``i`` of ``base`` (seed ``base.seed + i``) into ``<root>/seed<i>``; resumes a
  stopped run, and returns at once for a finished one. Returns (train steps done, wall seconds
  of this call)."""
  t = time.time()
  state = train.train_and_evaluate(seed_config(base, i), seed_workdir(root, i))
  return int(state.step), round(time.time() - t, 1)


def evaluate_seeds(root: str, indices, num: int, wall=None):
  """{i: ``evaluate.evaluate_run`` of ``<root>/seed<i>`` at ``num`` samples (EMA G), plus
  ``train_wall_s`` from ``wall`` (None when unknown)} over the seed ``indices`` that hold a
  checkpoint."""
  results = {}
  for i in indices:
    workdir = seed_workdir(root, i)
    if not has_checkpoint(workdir):
      print(f'seed {i}: no run in {workdir} yet; left out of the table')
      continue
    results[i] = evaluate.evaluate_run(workdir, num)
    results[i]['train_wall_s'] = (wall or {}).get(i)
  return results


def summarise(results):
  """{metric: {'mean', 'sd' (ddof 1; 0 for one seed), 'values'}} over the seeds in ``results``
  ({seed: metrics}), for each of ``METRICS`` that every seed has."""
  summary = {}
  for k in METRICS:
    if all(k in r for r in results.values()):
      v = np.array([r[k] for r in results.values()], np.float64)
      sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
      summary[k] = {'mean': float(v.mean()), 'sd': sd, 'values': v.tolist()}
  return summary


def table(results, name):
  summary = summarise(results)
  lines = [f'{name}: {len(results)} seeds ({", ".join(map(str, results))}), N = '
           f'{next(iter(results.values())).get("num_fake", "-")} samples each', '',
           '| metric | mean ± sd | per seed |', '|---|---|---|']
  for k, s in summary.items():
    lines.append(f'| {k} | {s["mean"]:.4g} ± {s["sd"]:.2g} | '
                 f'{", ".join(f"{x:.4g}" for x in s["values"])} |')
  return '\n'.join(lines), summary


def main(argv):
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {argv[1:]}; see --help')
  base = cli.config_flag(FLAGS)
  if FLAGS.seeds < 1:
    raise UserError(f'--seeds={FLAGS.seeds} must be >= 1')
  if FLAGS.only is not None and not 0 <= FLAGS.only < FLAGS.seeds:
    raise UserError(f'--only={FLAGS.only} must lie in [0, {FLAGS.seeds})')
  config_base.validate_config(base)
  root = FLAGS.root or os.path.join('runs', f'{base.name}_seeds')
  indices = [FLAGS.only] if FLAGS.only is not None else range(FLAGS.seeds)
  wall = {}
  if not FLAGS.collect:
    for i in indices:
      wall[i] = train_seed(base, root, i)[1]
    if FLAGS.only is not None:
      return
  results = evaluate_seeds(root, range(FLAGS.seeds), FLAGS.num, wall)
  if not results:
    raise UserError(f'no finished seed under {root}; train them first (drop --collect)')
  text, summary = table(results, f'{base.name} ({root})')
  print(text)
  with open(os.path.join(root, 'seeds.md'), 'w') as f:
    f.write(text + '\n')
  out = {'config': base.name, 'root': root, 'summary': summary,
         'per_seed': {str(k): v for k, v in results.items()}}
  with open(os.path.join(root, 'seeds.json'), 'w') as f:
    json.dump(out, f, indent=1, default=float)
  print(json.dumps({'config': base.name, 'seeds': len(results),
                    **{k: v['mean'] for k, v in summary.items()},
                    **{f'{k}_sd': v['sd'] for k, v in summary.items()}}))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
