"""Where the time of our DCGAN train step goes: each part jitted and timed alone.

  python benchmarks/step_parts.py                  # batch 64
  python benchmarks/step_parts.py --batch-size 256

Parts, at the classic MNIST DCGAN (experiments/mnist_dcgan_classic.py, what benchmarks/throughput.py times): G forward (train-mode BN); G forward
plus the pullback to G's params (what the G update needs of G); D forward on one batch; D
gradients w.r.t. its params (the D update's backward, per batch); D gradients w.r.t. its input
(what carries the G update's signal back into G); the two Adam updates; and the whole compiled
train step as launch.py runs it. Each is the median of ``--repeats`` timings of ``--iters`` calls
after compilation. The parts overlap (the step runs D twice per update, G twice without
``share_g_forward``), so they do not sum to the step; they rank the costs. Also prints each
part's FLOPs (XLA's cost analysis) and achieved GFLOP/s.
"""

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))
sys.path.insert(0, REPO)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import throughput  # noqa: E402


def timed(fn, args, iters, repeats):
  compiled = jax.jit(fn).lower(*args).compile()
  flops = throughput._flops(compiled.cost_analysis())
  jax.block_until_ready(compiled(*args))
  ts = []
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(iters):
      out = compiled(*args)
    jax.block_until_ready(out)
    ts.append((time.perf_counter() - t) / iters)
  return statistics.median(ts), flops


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--batch-size', type=int, default=64)
  ap.add_argument('--iters', type=int, default=10)
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--data-dir', default=throughput.DATA_DIR)
  args = ap.parse_args()
  ours = throughput.Ours(throughput.config_name(False), args.batch_size, args.data_dir)
  st = ours.state
  g, d = st.g, st.d
  b, latent = args.batch_size, ours.exp.config.model.latent_dim
  z = jax.random.normal(jax.random.key(0), (b, latent))
  x = jnp.tanh(jax.random.normal(jax.random.key(1), (b, 28, 28, 1)))

  def g_fwd(p, z):
    return g.apply_fn({'params': p, 'batch_stats': g.batch_stats}, z, train=True,
                      mutable=['batch_stats'])[0]

  def d_fwd(p, x):
    return d.apply_fn({'params': p, 'batch_stats': d.batch_stats}, x, train=True,
                      mutable=['batch_stats'])[0]

  def g_vjp(p, z):
    out, pull = jax.vjp(lambda q: g_fwd(q, z), p)
    return pull(out)

  adam = optax.adam(2e-4, 0.5)
  opt_state = adam.init(g.params)

  def adam_update(p, o):
    updates, o = adam.update(p, o, p)
    return optax.apply_updates(p, updates), o

  parts = [
      ('G forward', g_fwd, (g.params, z)),
      ('G forward + pullback to params', g_vjp, (g.params, z)),
      ('D forward', d_fwd, (d.params, x)),
      ('D grad w.r.t. params', jax.grad(lambda p, x: jnp.sum(d_fwd(p, x))), (d.params, x)),
      ('D grad w.r.t. input', jax.grad(lambda x, p: jnp.sum(d_fwd(p, x))), (x, d.params)),
      ('Adam update of G', adam_update, (g.params, opt_state)),
  ]
  print(f'batch {b}, {jax.devices()[0].platform}; median of {args.repeats} x {args.iters} calls')
  print(f'{"part":34s} {"ms":>8s} {"GFLOP":>7s} {"GFLOP/s":>8s}')
  for name, fn, a in parts:
    t, flops = timed(fn, a, args.iters, args.repeats)
    print(f'{name:34s} {t * 1e3:8.2f} {flops / 1e9:7.3f} {flops / t / 1e9:8.1f}', flush=True)
  rate = statistics.median(ours.steps_per_s(args.iters) for _ in range(args.repeats))
  print(f'{"whole train step":34s} {1e3 / rate:8.2f} {ours.flops / 1e9:7.3f} '
        f'{ours.flops * rate / 1e9:8.1f}')


if __name__ == '__main__':
  main()
