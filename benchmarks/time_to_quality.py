"""Time to quality: FD against training wall time, for our default, our classic DCGAN and the peer.

  python benchmarks/time_to_quality.py                      # 10 min each, FD every minute
  python benchmarks/time_to_quality.py --budget_min=0.5 --every_s=15 --num=1000   # a check
  python benchmarks/time_to_quality.py --plot_only          # re-plot and re-check --out

Three systems train on MNIST, one after another on this machine, each in a fresh child process
for the same wall-clock budget (``--budget_min``):
- ``default``: our default recipe, experiments/mnist.py;
- ``classic``: our peer-equivalent DCGAN, experiments/mnist_dcgan_classic.py (the peer's nets,
  batch, Adam 2e-4 / beta1 0.5 and one-G-forward step);
- ``peer``: the PyTorch peer, ../shared/bench/peer_dcgan_torch.py --arch dcgan, with its
  defaults (batch 64, Adam 2e-4, beta1 0.5) and ``--threads`` = this machine's cores.

How time is counted, for all three alike: the clock is the training wall time. It starts when
the nets are built (ours: ``Experiment.init_state``, the data put on the device and the train
step compiled, all on the clock; the peer: its ``build``, weight init and the rest of its
``main``), after the training images were read from disk and the evaluation reference was made
(both off the clock). It runs through every train step and stops while a measurement is taken:
sampling N images and computing FD are off the clock. Every ``--every_s`` seconds of training
time (the last at the budget) the run pauses and measures, after the first step that ends past
the mark; ours waits for its queued step first (``block_until_ready``, on the clock; the host
dispatches at most one step ahead), so each ``wall_s`` is the training time the measured G
really had, at most a step past its mark.

What is measured: FD (key ``fd``) and the classifier score of ``--num`` samples against ``--num``
images of the MNIST test split through our evaluation classifier (gan_jax.evaluation.suite, as
``python -m gan_jax.evaluate``), from fixed latents at every measurement: ours from its EMA G
(as launch.py's in-training eval and ``gan_jax.evaluate`` score it), the peer from its own G in
eval-mode BatchNorm, quantised to uint8 by its own ``sample`` (as it ships; README, "Results").
Precision, recall, KID, density and coverage cost ~1.5 min at N = 10 000 on 2 cores, so by
default they are computed only at each system's last measurement (``--full_metrics``).

How the peer is driven: its module is imported and its own ``main()`` runs unmodified, with a
huge ``--steps``; two wrappers see it from outside: its ``build`` (to start the clock and hold
G) and ``torch.optim.Adam`` (G's optimizer calls back after each of its steps, the end of one
peer iteration, where the clock is checked and a measurement is taken). Ours runs
``Experiment.step_fn``, the compiled step of launch.py, in a plain loop. A recipe with a
decaying learning rate (``optim.schedule`` not 'constant') stops at its ``num_steps`` (its last
point then comes before the budget); a constant-rate one trains on to the budget as the peer
does. All children run under tcmalloc where it is installed (gan_jax/allocator.py), the peer
too.

Output: one JSON line per measurement to ``--out`` (system, config, wall_s, steps, fd, score,
eval_s, and precision/recall/... where computed), a PNG beside it (FD against training seconds,
log-scale y, a line per system), and the target check: "our default reaches the FD the peer
has after <budget> min in <= 2 min: yes/no (t = ...)", t being the first measurement of the
default at or below the peer's last FD (so t is known to within ``--every_s``).
"""

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PEER = os.path.join(os.path.dirname(REPO), 'shared', 'bench', 'peer_dcgan_torch.py')
DATA_ROOT = os.environ.get('GAN_JAX_DATA_DIR') or os.path.join(os.path.dirname(REPO), 'shared',
                                                                 'datasets')
CONFIGS = {'default': 'experiments/mnist.py', 'classic': 'experiments/mnist_dcgan_classic.py',
           'peer': os.path.relpath(PEER, REPO)}
LABELS = {'default': 'gan_jax default (experiments/mnist.py)',
          'classic': 'gan_jax classic DCGAN (experiments/mnist_dcgan_classic.py)',
          'peer': 'PyTorch peer (peer_dcgan_torch.py --arch dcgan)'}
COMMIT = os.environ.get('GAN_JAX_COMMIT') or subprocess.run(
    ['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO, capture_output=True,
    text=True).stdout.strip() or 'unknown'


class Clock:
  """Training wall time: accumulates only between ``start()`` and ``stop()``."""

  def __init__(self):
    self.total, self._since = 0.0, None

  def start(self):
    self._since = time.perf_counter()

  def stop(self):
    self.total += time.perf_counter() - self._since
    self._since = None

  def elapsed(self) -> float:
    return self.total + (time.perf_counter() - self._since if self._since is not None else 0.0)


def marks(args):
  """Training seconds at which to measure: every ``every_s``, and the budget itself last."""
  budget = args.budget_min * 60.0
  out = [args.every_s * k for k in range(1, int(budget // args.every_s) + 1)]
  if not out or out[-1] < budget - 1e-9:
    out.append(budget)
  return out


class Measure:
  """Takes the measurements of one system (the clock stopped) and writes them as JSON lines."""

  def __init__(self, system, args):
    from gan_jax.evaluation import suite
    self.system, self.args = system, args
    self.marks = marks(args)
    self.evaluator = suite.Evaluator.for_dataset(
        'mnist', args.num, suite.data_config('mnist', directory=os.path.join(DATA_ROOT, 'mnist')))

  def next_mark(self, wall_s):
    """The first mark after ``wall_s``; None once the budget is spent."""
    return next((m for m in self.marks if m > wall_s + 1e-9), None)

  def __call__(self, images, wall_s, steps, last):
    t = time.perf_counter()
    full = self.args.full_metrics == 'all' or (self.args.full_metrics == 'final' and last)
    m = self.evaluator(images) if full else self.evaluator.quick(images)
    keep = ('fd', 'score', 'kid', 'precision', 'recall', 'density', 'coverage',
            'classes_covered')
    row = dict(system=self.system, config=CONFIGS[self.system], wall_s=round(wall_s, 2),
               steps=steps, **{k: m[k] for k in keep if k in m}, num=self.args.num,
               eval_s=round(time.perf_counter() - t, 2), budget_min=self.args.budget_min,
               every_s=self.args.every_s, seed=self.args.seed, threads=self.args.threads,
               commit=COMMIT, host=platform.node())
    with open(self.args.out, 'a') as f:
      f.write(json.dumps(row) + '\n')
    print(f'{self.system:8s} {wall_s:8.1f} s  {steps:7d} steps  FD {m["fd"]:8.2f}  '
          f'(eval {row["eval_s"]:.1f} s off the clock)', flush=True)


def run_ours(system, args):
  import jax
  from gan_jax import run, steps as steps_lib
  path = os.path.join(REPO, CONFIGS[system])
  spec = importlib.util.spec_from_file_location(system, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  c = module.get_config()
  assert c.data.name == 'mnist', f'{path}: config.data.name={c.data.name!r}, not mnist'
  c.seed = args.seed
  c.data.dir = c.data.dir or os.path.join(DATA_ROOT, 'mnist')  # the peer's files
  measure = Measure(system, args)
  exp = run.Experiment(c)  # reads the data: off the clock, as the peer's load is
  horizon = None if c.optim.get('schedule', 'constant') == 'constant' else c.num_steps
  eval_key = jax.random.fold_in(exp.root_key, steps_lib.RNG_EVAL)  # launch.py's eval latents
  print(f'{system}: {c.name}, batch {c.batch_size}, schedule {c.optim.get("schedule")}, '
        f'{"to the budget" if horizon is None else f"stops at {horizon} steps"}', flush=True)
  clock = Clock()
  clock.start()
  state, arrays, health = exp.init_state(), exp.device_arrays(), exp.new_health()
  step_fn = exp.step_fn.lower(state, arrays, health).compile()
  step, mark, in_flight = 0, measure.next_mark(0.0), None
  while mark is not None:
    state, metrics, health = step_fn(state, arrays, health)
    step += 1
    # At most one step queued ahead of the host: unbounded async dispatch queues dozens, and the
    # clock read below would then run several seconds ahead of what G has trained.
    jax.block_until_ready(in_flight)
    in_flight = metrics
    finished = step == horizon
    if clock.elapsed() >= mark or finished:
      jax.block_until_ready(state)  # the queued steps belong to the measured G: on the clock
      clock.stop()
      wall = clock.total
      mark = None if finished else measure.next_mark(wall)
      images = exp.sample(state, args.num, key=eval_key, use_ema=True)
      measure(images, wall, step, last=mark is None)
      clock.start()


class _BudgetSpent(Exception):
  pass


def run_peer(args):
  import numpy as np
  import torch
  spec = importlib.util.spec_from_file_location('peer_dcgan_torch', PEER)
  peer = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(peer)
  measure = Measure('peer', args)
  clock, held = Clock(), {}
  build, adam = peer.build, torch.optim.Adam

  def timed_build(*a, **k):  # the peer's data are loaded by now: the clock starts here
    clock.start()
    g, d = build(*a, **k)
    held['g'], held['g_params'] = g, {id(p) for p in g.parameters()}
    return g, d

  class Adam(adam):
    def __init__(self, params, *a, **k):
      params = list(params)
      super().__init__(params, *a, **k)
      self.is_g = id(params[0]) in held.get('g_params', ())

    def step(self, *a, **k):
      out = super().step(*a, **k)
      if self.is_g:  # G's update ends one peer iteration
        held['steps'] = held.get('steps', 0) + 1
        if clock.elapsed() >= held['mark']:
          clock.stop()
          wall = clock.total
          held['mark'] = measure.next_mark(wall)
          # The peer's own sampler (eval-mode BN, uint8), fixed latents at every measurement.
          # Latents of its default --nz (100), batches of 500 and seed + 1, as its main() uses.
          u8 = peer.sample(held['g'], args.num, 100, 500, torch.Generator().manual_seed(
              args.seed + 1))
          measure(u8[..., None].astype(np.float32) / 127.5 - 1.0, wall, held['steps'],
                  last=held['mark'] is None)
          if held['mark'] is None:
            raise _BudgetSpent()
          clock.start()
      return out

  held['mark'] = measure.next_mark(0.0)
  peer.build, torch.optim.Adam = timed_build, Adam
  argv = sys.argv
  sys.argv = [PEER, '--dataset', 'mnist', '--arch', 'dcgan', '--steps', str(10 ** 9),
              '--seed', str(args.seed), '--threads', str(args.threads), '--log-every',
              str(10 ** 9), '--data-root', DATA_ROOT, '--out', os.devnull]
  try:
    peer.main()
  except _BudgetSpent:
    pass
  finally:
    peer.build, torch.optim.Adam, sys.argv = build, adam, argv


def load_rows(path):
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot(rows, png, budget_min, target_min):
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for system in CONFIGS:
    pts = [(r['wall_s'], r['fd']) for r in rows if r['system'] == system]
    if pts:
      ax.plot(*zip(*pts), marker='o', label=LABELS[system])
  peer = [r['fd'] for r in rows if r['system'] == 'peer']
  if peer:
    ax.axhline(peer[-1], color='grey', ls='--', lw=1, label="the peer's last FD")
  ax.axvline(target_min * 60, color='grey', ls=':', lw=1, label=f'{target_min:g} min')
  ax.set_yscale('log')
  ax.set_xlabel('training wall time (s; evaluations excluded)')
  ax.set_ylabel(f'FD (N = {rows[0]["num"]}, lower is better)')
  ax.set_title(f'MNIST time to quality, {budget_min:g} min each, commit {rows[0]["commit"]}')
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(png, dpi=120)
  plt.close(fig)


def target_check(rows, budget_min, target_min):
  """The line saying whether the default reaches the peer's last FD within ``target_min``."""
  peer = [r for r in rows if r['system'] == 'peer']
  default = [r for r in rows if r['system'] == 'default']
  if not peer or not default:
    return 'target check skipped: it needs both the default and the peer'
  goal = peer[-1]['fd']
  hit = next((r for r in default if r['fd'] <= goal), None)
  head = (f'our default reaches the FD the peer has after {budget_min:g} min (FD {goal:.1f} at '
          f'{peer[-1]["wall_s"]:.0f} s) in <= {target_min:g} min')
  if hit is None:
    best = min(default, key=lambda r: r['fd'])
    return (f'{head}: no (t = not reached in {default[-1]["wall_s"]:.0f} s; the default\'s best '
            f'FD {best["fd"]:.1f} at {best["wall_s"]:.0f} s)')
  ok = hit['wall_s'] <= target_min * 60
  return (f'{head}: {"yes" if ok else "no"} (t = {hit["wall_s"]:.0f} s, {hit["steps"]} steps, '
          f'FD {hit["fd"]:.1f}; measured every {rows[0]["every_s"]:g} s)')


def main():
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument('--budget_min', type=float, default=10.0,
                  help='training wall time per system, minutes')
  ap.add_argument('--every_s', type=float, default=60.0,
                  help='training seconds between FD measurements')
  ap.add_argument('--num', type=int, default=10000, help='samples (and real test images) per FD')
  ap.add_argument('--systems', default='default,classic,peer',
                  help=f'comma list of {", ".join(CONFIGS)}, run in this order')
  ap.add_argument('--seed', type=int, default=0)
  ap.add_argument('--threads', type=int, default=os.cpu_count() or 1,
                  help="the peer's torch threads (default: this machine's cores)")
  ap.add_argument('--full_metrics', choices=('final', 'all', 'none'), default='final',
                  help='where to add precision/recall/KID/density/coverage to FD and score')
  ap.add_argument('--target_min', type=float, default=2.0,
                  help="the default must reach the peer's last FD within this many minutes")
  ap.add_argument('--out', default=os.path.join(REPO, 'benchmarks', 'results',
                                                'time_to_quality.jsonl'))
  ap.add_argument('--plot_only', action='store_true',
                  help='skip training: plot and check the lines already in --out')
  ap.add_argument('--child', choices=tuple(CONFIGS), help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a.child:  # one system, in its own process
    run_peer(a) if a.child == 'peer' else run_ours(a.child, a)
    return
  systems = [s.strip() for s in a.systems.split(',') if s.strip()]
  bad = [s for s in systems if s not in CONFIGS]
  if bad or not systems:
    ap.error(f'--systems={a.systems!r}: valid names are {", ".join(CONFIGS)}')
  if not (a.budget_min > 0 and a.every_s > 0 and a.num >= 2):
    ap.error('--budget_min and --every_s must be > 0 and --num >= 2')
  png = os.path.splitext(a.out)[0] + '.png'
  if not a.plot_only:
    from gan_jax import allocator
    allocator.reexec_with_tcmalloc()  # children inherit it: the same allocator for all three
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    open(a.out, 'w').close()
    for system in systems:
      print(f'--- {LABELS[system]}: {a.budget_min:g} min of training', flush=True)
      r = subprocess.run([
          sys.executable, os.path.abspath(__file__), f'--child={system}', f'--out={a.out}',
          f'--budget_min={a.budget_min}', f'--every_s={a.every_s}', f'--num={a.num}',
          f'--seed={a.seed}', f'--threads={a.threads}', f'--full_metrics={a.full_metrics}'])
      if r.returncode:
        sys.exit(f'error: {system} failed (exit {r.returncode}); its lines so far are in {a.out}')
  rows = load_rows(a.out)
  if not rows:
    sys.exit(f'error: {a.out} holds no measurements')
  budget_min = rows[0]['budget_min']  # the file's, also with --plot_only
  plot(rows, png, budget_min, a.target_min)
  print(f'{len(rows)} measurements in {a.out}; plot {png}')
  print(target_check(rows, budget_min, a.target_min))


if __name__ == '__main__':
  main()
