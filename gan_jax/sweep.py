"""Hyper-parameter sweep: every point of a grid, N seeds each, one run after another, ranked.

  python -m gan_jax.sweep --config=experiments/mnist.py \
      --grid='optim.g_lr=1e-4,2e-4;loss=ns,rsgan' --seeds=2 --budget_min=10

``;`` separates the axes, ``,`` the values of one axis; each axis is a dotted config key and its
values, parsed to the type of that key's value in the config (bool, int, float, str). The points
are the Cartesian product, each named ``key=value,key=value`` in the order of the axes. Seed i
of a point trains ``config.seed + i`` into ``<root>/<point>/seed<i>`` with ``gan_jax.seeds``
(``--root``, default ``runs/<config.name>_sweep``); other ``--config.*`` flags apply to every
point. ``--budget_min`` stops each run after that many wall-clock minutes (config
``time_budget_s``). A run that ended (its ``sweep_run.json`` says so: finished, out of budget
or diverged) is not run again, so the same command resumes a sweep. SIGTERM or Ctrl-C stops the
current run at a checkpoint and ends the sweep.

Each run is evaluated as ``python -m gan_jax.evaluate --workdir=<run> --num=<num>`` does (EMA
G). Writes to ``<root>``: ``sweep.md``, the points by mean FD, best first (FD mean ± sd, recall,
coverage, precision, training wall seconds, steps, a command that reproduces the row);
``sweep.json``, the same with every seed's metrics and in-training curve; and
``sweep_fd_vs_time.png``, the in-training FD against wall seconds since the run started, one
line per point (the mean over its seeds at the eval steps they share; each seed faint). 2-D toy
runs have no FD and are ranked by ``kl_uniform`` (their mode histogram against uniform). The
table is printed; the last stdout line is a JSON summary naming ``sweep.json``.
"""

import difflib
import hashlib
import itertools
import json
import os
import re
import shlex
import struct
import sys

import numpy as np
from absl import flags
from ml_collections import config_dict, config_flags

from gan_jax import cli, config_base, seeds
from gan_jax.errors import TrainingDiverged, UserError

FLAGS = flags.FLAGS
MARKER = 'sweep_run.json'  # per run: {'done', 'steps', 'train_wall_s', 'stopped_by', 'budget_s'}
BUDGET_KEY = 'time_budget_s'  # the config field train.py stops at: wall seconds, 0 = no limit
# The rank metric (lower is better) -> the table's other columns and the in-training tag plotted.
KINDS = {'fd': (('recall', 'coverage', 'precision'), 'eval/fd'),
         'kl_uniform': (('modes_covered', 'high_quality'), 'eval/kl_uniform')}


def define_flags():
  """The CLI's flags (defined only when run as a command: importing this module defines none)."""
  config_flags.DEFINE_config_file('config', 'experiments/mnist.py', 'Experiment config file.',
                                  lock_config=False)
  flags.DEFINE_string('grid', None, "Axes 'key=v1,v2;key2=v3,v4' (';' between axes).")
  flags.DEFINE_integer('seeds', 1, 'Seeds per point (seed = config.seed + i).')
  flags.DEFINE_float('budget_min', 0.0, 'Wall-clock minutes per run; 0 = train to num_steps.')
  flags.DEFINE_string('root', None, 'Folder of the sweep (default runs/<config.name>_sweep).')
  flags.DEFINE_integer('num', 10000, 'Samples per evaluation.')


def _flat_keys(config, prefix=''):
  return [flat for k, v in config.items() for flat in (
      _flat_keys(v, f'{prefix}{k}.') if isinstance(v, config_dict.ConfigDict) else [prefix + k])]


def _lookup(config, key: str):
  """The value of dotted ``key`` in ``config``; a UserError names a key that is not there."""
  node, parts = config, key.split('.')
  for depth, part in enumerate(parts):
    if not isinstance(node, config_dict.ConfigDict):
      raise UserError(f'--grid: the config has no key {key!r}: config.{".".join(parts[:depth])} '
                      'is a value, not a group of keys')
    if part not in node:
      where = '.'.join(parts[:depth])
      near = [f'{where}.{k}' if where else k
              for k in difflib.get_close_matches(part, list(node.keys()), n=1, cutoff=0.6)]
      near = near or [k for k in _flat_keys(config) if k.split('.')[-1] == parts[-1]]
      hint = (f'did you mean {near[0]!r}?' if near else
              f'keys {"under " + where if where else "at the top"}: {", ".join(sorted(node))}')
      raise UserError(f'--grid: the config has no key {key!r}; {hint}')
    node = node[part]
  if isinstance(node, config_dict.ConfigDict):
    keys = sorted(node.keys())
    raise UserError(f'--grid: {key!r} is a group of keys ({", ".join(keys)}), not a value; name '
                    f'one of them, e.g. {key}.{keys[0]}')
  return node


def parse_value(key: str, raw: str, current):
  """``raw`` as the type of the config's ``current`` value of ``key`` (bool, int, float or str)."""
  kind = type(current)
  if kind not in (bool, int, float, str):
    raise UserError(f'--grid: config.{key} is {current!r} (a {kind.__name__}); the grid takes '
                    'keys whose value is a bool, int, float or str')
  try:
    if kind is bool:
      if raw.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
      return raw.lower() in ('true', '1')
    return kind(raw)
  except ValueError:
    raise UserError(f'--grid: {key}={raw!r} does not parse as {kind.__name__} (config.{key} is '
                    f'{current!r}); give {kind.__name__} values') from None


def parse_grid(text: str, config):
  """[(key, [(spelling, value), ...]), ...] of ``text`` = ``'k1=a,b;k2=c'``, each value parsed
  to the type of its key in ``config``. Bad input is a one-line UserError."""
  example = "e.g. --grid='optim.g_lr=1e-4,2e-4;loss=ns,rsgan'"
  axes, seen = [], set()
  for axis in (a.strip() for a in (text or '').split(';')):
    if not axis:
      continue
    key, eq, values = (s.strip() for s in axis.partition('='))
    if not eq or not key:
      raise UserError(f"--grid: axis {axis!r} is not key=v1,v2 (axes separated by ';'); {example}")
    if key in seen:
      raise UserError(f'--grid: key {key!r} has two axes; give each key one axis')
    seen.add(key)
    current = _lookup(config, key)
    raws = [v.strip() for v in values.split(',')]
    if not all(raws):
      raise UserError(f'--grid: axis {axis!r} has an empty value; separate values with one ","')
    parsed = [(raw, parse_value(key, raw, current)) for raw in raws]
    dup = [r for j, (r, v) in enumerate(parsed) if v in [w for _, w in parsed[:j]]]
    if dup:
      raise UserError(f'--grid: {key}={dup[0]} repeats a value of axis {axis!r}; give each once')
    axes.append((key, parsed))
  if not axes:
    raise UserError(f'--grid is empty; pass at least one axis, {example}')
  return axes


def dir_name(name: str) -> str:
  """A folder name for a point: characters other than ``[A-Za-z0-9._=,+-]`` become ``_``; a name
  over 120 characters is cut and a hash of the whole added."""
  safe = re.sub(r'[^A-Za-z0-9._=,+-]', '_', name)
  if len(safe) > 120:
    safe = safe[:110] + '-' + hashlib.sha1(name.encode()).hexdigest()[:8]
  return safe


def grid_points(axes):
  """[{'point': name, 'dir': folder, 'overrides': {key: value}}] of the Cartesian product."""
  points = []
  for combo in itertools.product(*[[(key, raw, v) for raw, v in vals] for key, vals in axes]):
    name = ','.join(f'{key}={raw}' for key, raw, _ in combo)
    points.append({'point': name, 'dir': dir_name(name),
                   'overrides': {key: v for key, _, v in combo}})
  dirs = [p['dir'] for p in points]
  clash = next((d for d in dirs if dirs.count(d) > 1), None)
  if clash:
    raise UserError(f'--grid: two points share the folder {clash!r} (their values differ only in '
                    'characters other than letters, digits and ._=,+-); spell them apart')
  return points


def point_config(base, overrides, budget_s: float):
  c = base.copy_and_resolve_references()
  for key, value in overrides.items():
    *path, leaf = key.split('.')
    node = c
    for p in path:
      node = node[p]
    node[leaf] = value
  if budget_s:
    c[BUDGET_KEY] = float(budget_s)
  return c


def read_marker(workdir):
  try:
    with open(os.path.join(workdir, MARKER)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return {}


def run_seed(config, point_root: str, i: int, budget_s: float, tag: str) -> bool:
  """Trains seed ``i`` of ``config`` unless its marker says it ended; writes the marker.
  Returns False when a signal stopped the run (the sweep stops too), else True."""
  wd = seeds.seed_workdir(point_root, i)
  marker = read_marker(wd)
  if marker.get('done'):
    other = marker.get('budget_s', budget_s) != budget_s  # a budget stop under another budget
    print(f'{tag}: ended before ({marker.get("stopped_by")}, {wd}); not run again' +
          (f' (its budget was {marker["budget_s"]:g}s, not {budget_s:g}s)' if other else ''),
          flush=True)
    return True
  ckpt = os.path.join(wd, 'checkpoints')
  saved = [int(n) for n in os.listdir(ckpt) if n.isdigit()] if os.path.isdir(ckpt) else []
  if max(saved, default=-1) >= config.num_steps:  # finished by launch.py or gan_jax.seeds
    marker = {'done': True, 'steps': max(saved), 'train_wall_s': None, 'stopped_by': 'num_steps',
              'budget_s': budget_s}
  else:
    print(f'{tag}: training into {wd}', flush=True)
    earlier = marker.get('train_wall_s') or 0.0  # a resumed run adds the time of its launches
    try:
      steps, wall = seeds.train_seed(config, point_root, i)
      by = ('num_steps' if steps >= config.num_steps else
            'budget' if budget_s and wall >= budget_s else None)
    except TrainingDiverged as e:  # one bad point must not end the search
      steps, wall, by = None, None, f'diverged: {" ".join(str(e).split())}'
    marker = {'done': by is not None, 'steps': steps, 'stopped_by': by, 'budget_s': budget_s,
              'train_wall_s': None if wall is None else round(earlier + wall, 1)}
    done = by if steps is None else f'{steps} steps in {wall:.1f}s ({by or "stopped"})'
    print(f'{tag}: {done}', flush=True)
  with open(os.path.join(wd, MARKER), 'w') as f:
    json.dump(marker, f)
  return marker['done']


def tb_curve(workdir: str, tag: str):
  """[[seconds since the run started, step, value], ...] of scalar ``tag`` of a run.

  metrics.jsonl has no clock, so this reads the TensorBoard event files, where every event has
  its wall time. Each launch writes one file, whose first event is written as the run starts
  (before compiling); a resumed run's clock continues from the end of the previous launch (the
  gap between launches is not counted). A step logged twice (after a resume) keeps the later.
  """
  from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
  d = os.path.join(workdir, 'tb')
  launches = []
  for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
    events = []
    with open(os.path.join(d, name), 'rb') as f:
      while len(head := f.read(12)) == 12:  # TFRecord: u64 length, u32 crc, data, u32 crc
        data = f.read(struct.unpack('<Q', head[:8])[0])
        f.read(4)
        events.append(event_pb2.Event.FromString(data))
    launches += [events] if events else []
  points, offset = {}, 0.0
  for events in sorted(launches, key=lambda e: e[0].wall_time):
    t0 = events[0].wall_time
    for e in events:
      for v in e.summary.value:
        if v.tag == tag:
          points[int(e.step)] = [round(offset + e.wall_time - t0, 2), int(e.step), v.simple_value]
    offset += events[-1].wall_time - t0
  return [points[s] for s in sorted(points)]


def mean_curve(curves):
  """The mean over seeds of [[t, step, value], ...] at the steps every seed has."""
  if not curves:
    return []
  common = sorted(set.intersection(*[{s for _, s, _ in c} for c in curves]))
  rows = [[r for c in curves for r in c if r[1] == s] for s in common]
  return [[float(np.mean([r[0] for r in rs])), rs[0][1], float(np.mean([r[2] for r in rs]))]
          for rs in rows]


def rank(rows):
  """(rank key, ``rows`` best first): by mean FD, or by mean ``kl_uniform`` when the runs have no
  FD (2-D toy data); points whose every seed diverged come last."""
  key = 'fd' if all('fd' in r['summary'] for r in rows if r['summary']) else 'kl_uniform'
  return key, sorted(rows, key=lambda r: r['summary'][key]['mean'] if r['summary'] else np.inf)


def reproduce_command(point, args):
  """The ``gan_jax.seeds`` command that trains and evaluates ``point`` alone, into a fresh root
  (``<root>_repro/<point>``), leaving the sweep's runs as they are."""
  over = [f'--config.{k}={v}' for k, v in point['overrides'].items()]
  over += [f'--config.{BUDGET_KEY}={args["budget_s"]:g}'] if args['budget_s'] else []
  return shlex.join(['python', '-m', 'gan_jax.seeds', f'--config={args["config"]}',
                     *args['overrides'], *over, f'--seeds={args["seeds"]}',
                     f'--num={args["num"]}', f'--root={args["root"]}_repro/{point["dir"]}'])


def table(rows, rank_key, title):
  cols = KINDS[rank_key][0]
  lines = [title, '', f'| # | point | {rank_key} mean ± sd | {" | ".join(cols)} | train wall s | '
           'steps | reproduce |', '|' + '---|' * (len(cols) + 6)]
  for n, r in enumerate(rows, 1):
    s, per = r['summary'], r['per_seed'].values()
    walls = [p['train_wall_s'] for p in per if p.get('train_wall_s') is not None]
    steps = sorted({p['step'] for p in per})
    bad = f' ({len(r["diverged"])}/{len(r["diverged"]) + len(per)} diverged)' if r['diverged'] \
        else ''
    cells = [str(n), r['point'] + bad,
             f'{s[rank_key]["mean"]:.4g} ± {s[rank_key]["sd"]:.2g}' if rank_key in s else '-',
             *[f'{s[c]["mean"]:.3g}' if c in s else '-' for c in cols],
             f'{np.mean(walls):.0f}' if walls else '-',
             '-' if not steps else str(steps[0]) if len(steps) == 1 else f'{steps[0]}-{steps[-1]}',
             f'`{r["command"]}`']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def figure(rows, tag, path, title):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(8, 5))
  values = []
  for k, r in enumerate(rows):
    curves = [c for c in r['curves'].values() if c]
    for c in curves:
      ax.plot([p[0] for p in c], [p[2] for p in c], color=f'C{k % 10}', alpha=0.25, lw=0.8)
      values += [p[2] for p in c]
    mean = mean_curve(curves)
    ax.plot([p[0] for p in mean], [p[2] for p in mean], color=f'C{k % 10}', marker='.', lw=1.6,
            label=r['point'] if mean else f'{r["point"]} (no in-training {tag})')
  if values and min(values) > 0:
    ax.set_yscale('log')
  ax.set(xlabel='wall seconds since the run started', ylabel=f'{tag} (in training)')
  ax.set_title(title, fontsize=8)
  ax.grid(alpha=0.3, which='both')
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _user_overrides(argv, grid_keys):
  """The command line's ``--config.*`` flags as typed, but those of keys the grid sets."""
  out = []
  for j, a in enumerate(argv):
    if a.startswith('--config.'):
      spaced = '=' not in a and j + 1 < len(argv) and not argv[j + 1].startswith('-')
      flag = f'{a}={argv[j + 1]}' if spaced else a
      if flag[len('--config.'):].split('=')[0] not in grid_keys:
        out.append(flag)
  return out


def evaluate_point(p, root, n_seeds, num, args):
  """The row of point ``p``: per-seed metrics of the runs that did not diverge, and summary."""
  point_root = os.path.join(root, p['dir'])
  markers = {i: read_marker(seeds.seed_workdir(point_root, i)) for i in range(n_seeds)}
  diverged = {i: m['stopped_by'] for i, m in markers.items()
              if str(m.get('stopped_by')).startswith('diverged')}
  print(f'evaluating {p["point"]} ({n_seeds - len(diverged)} runs, N = {num})', flush=True)
  per_seed = seeds.evaluate_seeds(point_root, [i for i in markers if i not in diverged], num,
                                  {i: m.get('train_wall_s') for i, m in markers.items()})
  return {**p, 'command': reproduce_command(p, args), 'diverged': diverged,
          'per_seed': per_seed, 'summary': seeds.summarise(per_seed)}


def main(argv):
  if len(argv) > 1:
    raise UserError(f'unexpected arguments {argv[1:]}; see --help')
  base = cli.config_flag(FLAGS)
  if FLAGS.seeds < 1:
    raise UserError(f'--seeds={FLAGS.seeds} must be >= 1')
  if FLAGS.num < 2:
    raise UserError(f'--num={FLAGS.num} must be >= 2 (covariances and k-NN need several samples)')
  if not FLAGS.budget_min >= 0:
    raise UserError(f'--budget_min={FLAGS.budget_min} must be >= 0 minutes (0 = no limit)')
  budget_s = FLAGS.budget_min * 60
  if budget_s and BUDGET_KEY not in base:
    raise UserError(f'--budget_min={FLAGS.budget_min:g} needs config.{BUDGET_KEY}, which this '
                    "version's config lacks (train.py has no time budget yet); leave "
                    '--budget_min out to train every run to config.num_steps')
  points = grid_points(parse_grid(FLAGS.grid, base))
  configs = [point_config(base, p['overrides'], budget_s) for p in points]
  for p, c in zip(points, configs):  # every point is checked before anything runs
    try:
      config_base.validate_config(c)
    except UserError as e:
      raise UserError(f'grid point {p["point"]}: {e}') from None
  root = FLAGS.root or os.path.join('runs', f'{base.name}_sweep')
  args = {'config': config_flags.get_config_filename(FLAGS['config']), 'seeds': FLAGS.seeds,
          'num': FLAGS.num, 'root': root, 'budget_s': budget_s, 'overrides': _user_overrides(
              sys.argv[1:], {k for p in points for k in p['overrides']})}
  total = len(points) * FLAGS.seeds
  for j, (p, c) in enumerate(zip(points, configs)):
    for i in range(FLAGS.seeds):
      tag = f'[{j * FLAGS.seeds + i + 1}/{total}] {p["point"]} seed {i}'
      if not run_seed(c, os.path.join(root, p['dir']), i, budget_s, tag):
        print(f'{tag}: stopped by a signal; rerun the same command to continue the sweep')
        return
  rank_key, rows = rank([evaluate_point(p, root, FLAGS.seeds, FLAGS.num, args) for p in points])
  tag = KINDS[rank_key][1]
  for r in rows:
    r['curves'] = {i: tb_curve(seeds.seed_workdir(os.path.join(root, r['dir']), i), tag)
                   for i in r['per_seed']}
  budget = f'{FLAGS.budget_min:g} min per run' if budget_s else 'no time budget'
  title = (f'{base.name} sweep ({root}): {len(rows)} point(s) x {FLAGS.seeds} seed(s), N = '
           f'{FLAGS.num}, {budget}; best first by mean {rank_key}')
  text = table(rows, rank_key, title)
  print(text)
  with open(os.path.join(root, 'sweep.md'), 'w') as f:
    f.write(text + '\n')
  out = os.path.join(root, 'sweep.json')
  with open(out, 'w') as f:
    json.dump({'config': args['config'], 'name': base.name, 'grid': FLAGS.grid,
               'seeds': FLAGS.seeds, 'num': FLAGS.num, 'budget_min': FLAGS.budget_min,
               'rank_key': rank_key, 'curve_tag': tag,
               'points': [{**r, 'per_seed': {str(k): v for k, v in r['per_seed'].items()}}
                          for r in rows]}, f, indent=1, default=float)
  figure(rows, tag, os.path.join(root, 'sweep_fd_vs_time.png'), title)
  print(json.dumps({'sweep': out, 'rank_key': rank_key, 'ranking': [
      [r['point'], r['summary'][rank_key]['mean'] if r['summary'] else None] for r in rows]}))


if __name__ == '__main__':
  define_flags()
  cli.run(main)
