"""Our DCGAN (or MLP) train step under several XLA:CPU flag sets, each in its own process.

  python benchmarks/xla_flags.py                          # the built-in flag sets, batch 64
  python benchmarks/xla_flags.py --batch-size 256 --only ynn_conv,baseline
  python benchmarks/xla_flags.py --flags '--xla_cpu_use_xnnpack=true' --set compute_dtype=bfloat16

XLA reads ``XLA_FLAGS`` once, when the backend starts, so every flag set runs in a fresh
subprocess. Each prints steps/s (median of ``--repeats``), compile time, and the losses after
the warm-up step and ``--check-steps`` more from the same seed: a flag set that changes the numbers beyond float
rounding shows it there. The peer is not run here (``throughput.py`` does that); this script
only ranks the levers. The table of what was tried is in benchmarks/README.md.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

import throughput  # noqa: E402  (imports jax; XLA_FLAGS is read later, when a backend starts)

# name -> XLA_FLAGS. The fusion types are those this jaxlib's flag help lists.
FLAG_SETS = {
    'baseline': '',
    'ynn_conv': '--xla_cpu_experimental_ynn_fusion_type=individual_convolution',
    'ynn_conv_dot': '--xla_cpu_experimental_ynn_fusion_type=individual_convolution,individual_dot',
    'ynn_all': ('--xla_cpu_experimental_ynn_fusion_type='
                'individual_convolution,individual_dot,eltwise,reduce'),
    'xnn_dot': '--xla_cpu_experimental_xnn_fusion_type=dot',
    'xnnpack': '--xla_cpu_use_xnnpack=true',
    'onednn': '--xla_cpu_use_onednn=true',
    'onednn_dot': '--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_fusion_type=dot',
    'fast_math': '--xla_cpu_enable_fast_math=true',
    'no_multithread_eigen': '--xla_cpu_multi_thread_eigen=false',
}


def child(args):
  import jax
  t0 = time.perf_counter()
  ours = throughput.Ours(throughput.config_name(args.mlp), args.batch_size, args.data_dir,
                         args.set)
  # The losses after the warm-up step and a few more from the seed's initial state: a numerics
  # check, taken before the timing (which only needs some state to step from).
  m = None
  for _ in range(args.check_steps):
    ours.state, m, ours.health = ours.exp.step_fn(ours.state, ours.arrays, ours.health)
  m = jax.device_get(m)
  rates = [ours.steps_per_s(args.steps) for _ in range(args.repeats)]
  print(json.dumps({
      'flags': os.environ.get('XLA_FLAGS', ''), 'batch_size': args.batch_size,
      'model': 'mlp' if args.mlp else 'dcgan', 'set': args.set,
      'steps_per_s': statistics.median(rates), 'all': [round(r, 3) for r in rates],
      'compile_s': round(ours.compile_s, 2), 'setup_s': round(time.perf_counter() - t0, 1),
      'loss_D': float(m['loss_D']), 'loss_G': float(m['loss_G'])}), flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--batch-size', type=int, default=64)
  ap.add_argument('--steps', type=int, default=20, help='timed steps per repeat')
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--check-steps', type=int, default=5)
  ap.add_argument('--mlp', action='store_true')
  ap.add_argument('--only', default='', help='comma list of flag-set names (default: all)')
  ap.add_argument('--flags', default=None, help='one custom XLA_FLAGS string instead')
  ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE')
  ap.add_argument('--data-dir', default=throughput.DATA_DIR)
  ap.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.child:
    return child(args)
  if args.flags is not None:
    sets = {'custom': args.flags}
  else:
    names = [n for n in args.only.split(',') if n] or list(FLAG_SETS)
    bad = [n for n in names if n not in FLAG_SETS]
    if bad:
      sys.exit(f'error: unknown flag sets {bad}; valid: {", ".join(FLAG_SETS)}')
    sets = {n: FLAG_SETS[n] for n in names}
  child_args = ['--child', '--batch-size', str(args.batch_size), '--steps', str(args.steps),
                '--repeats', str(args.repeats), '--check-steps', str(args.check_steps),
                '--data-dir', args.data_dir] + (['--mlp'] if args.mlp else [])
  for item in args.set:
    child_args += ['--set', item]
  print(f'{"flag set":22s} {"steps/s":>8s} {"compile":>8s} {"loss_D":>8s} {"loss_G":>8s}  runs')
  for name, flags in sets.items():
    env = dict(os.environ, XLA_FLAGS=flags)
    r = subprocess.run([sys.executable, __file__] + child_args, env=env,
                       capture_output=True, text=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith('{')]
    if r.returncode or not lines:
      err = (r.stderr.strip().splitlines() or ['?'])[-1]
      print(f'{name:22s} failed: {err[:200]}', flush=True)
      print('JSON ' + json.dumps({'name': name, 'flags': flags, 'error': err[:500]}), flush=True)
      continue
    d = json.loads(lines[-1])
    print(f'{name:22s} {d["steps_per_s"]:8.2f} {d["compile_s"]:7.1f}s {d["loss_D"]:8.4f} '
          f'{d["loss_G"]:8.4f}  {d["all"]}', flush=True)
    print('JSON ' + json.dumps(dict(d, name=name)), flush=True)


if __name__ == '__main__':
  main()
