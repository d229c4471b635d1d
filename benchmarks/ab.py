"""A/B of one config change on our train step: both variants built in one process, alternated.

  python benchmarks/ab.py --set model.matmul_dtype=bfloat16                 # DCGAN, batch 64
  python benchmarks/ab.py --mlp --steps 100 --set model.matmul_dtype=bfloat16
  python benchmarks/ab.py --mlp --steps 100 --set ema_decay=0.0

Separate runs on a shared 2-core host drift by ±15 % with the neighbours; alternating A and B in
one process (``--repeats`` rounds of ``--steps`` steps each) cancels most of that. Prints the
median steps/s of each, the rounds, and B / A. No peer: ``throughput.py`` measures against it.
"""

import argparse
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

import throughput  # noqa: E402


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                  help='the change that makes variant B (repeatable)')
  ap.add_argument('--mlp', action='store_true')
  ap.add_argument('--batch-size', type=int, default=64)
  ap.add_argument('--steps', type=int, default=10, help='steps per round')
  ap.add_argument('--repeats', type=int, default=5, help='rounds (A then B each round)')
  ap.add_argument('--data-dir', default=throughput.DATA_DIR)
  args = ap.parse_args()
  if not args.set:
    sys.exit('error: pass the change to test, e.g. --set model.matmul_dtype=bfloat16')
  name = throughput.config_name(args.mlp)
  a = throughput.Ours(name, args.batch_size, args.data_dir, [])
  b = throughput.Ours(name, args.batch_size, args.data_dir, args.set)
  ra, rb = [], []
  for _ in range(args.repeats):
    ra.append(a.steps_per_s(args.steps))
    rb.append(b.steps_per_s(args.steps))
  ma, mb = statistics.median(ra), statistics.median(rb)
  print(f'{name} batch {args.batch_size}: A (config) {ma:.2f} steps/s {[round(x, 2) for x in ra]}')
  print(f'{name} batch {args.batch_size}: B ({" ".join(args.set)}) {mb:.2f} steps/s '
        f'{[round(x, 2) for x in rb]}')
  print(f'B / A = {mb / ma:.3f}')


if __name__ == '__main__':
  main()
