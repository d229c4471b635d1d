"""The forms of G's 4x4 stride-2 transposed conv, timed alone: forward, backward, both.

  python benchmarks/upconv_forms.py                       # 7x7x256 -> 14x14x128, batch 64
  python benchmarks/upconv_forms.py --batch-size 256
  python benchmarks/upconv_forms.py --layer 2             # 14x14x128 -> 28x28x1

Forms (all the same function of the same 4x4 kernel, checked here against the first):
  taps        one matmul to the 16 kernel taps + overlap-add, autodiff backward
  windows     2x2 conv of the padded input to 4 Cout channels + depth-to-space, autodiff
  lax_convT   XLA's transposed conv (lhs-dilated convolution), autodiff: kernels='flax'
  custom      kernels='xla_cpu': the window forward, the custom VJP backward
              (tap cotangent gather + two matmuls); --bf16 adds its bf16-matmul backward

"backward" is the VJP alone (the forward is dead code there: the layer is linear), "both" is
forward plus VJP with the output kept. Minimum of ``--repeats`` timings of ``--iters`` calls
(minimum, not median: on a shared 2-core host the noise only ever adds time).
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from gan_jax import allocator  # noqa: E402

allocator.reexec_with_tcmalloc()  # GAN_JAX_TCMALLOC=0: glibc's malloc

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from gan_jax.kernels.xla_cpu import conv_transpose  # noqa: E402


def best_ms(fn, args, iters, repeats):
  compiled = jax.jit(fn).lower(*args).compile()
  jax.block_until_ready(compiled(*args))
  best = float('inf')
  for _ in range(repeats):
    t = time.perf_counter()
    for _ in range(iters):
      out = compiled(*args)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - t) / iters * 1e3)
  return best


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument('--batch-size', type=int, default=64)
  ap.add_argument('--layer', type=int, default=1, choices=(1, 2))
  ap.add_argument('--iters', type=int, default=5)
  ap.add_argument('--repeats', type=int, default=5)
  ap.add_argument('--bf16', action='store_true', help='also the custom form with bf16 matmuls')
  ap.add_argument('--skip-slow', action='store_true',
                  help='leave out the autodiff of windows and lax_convT (seconds per call)')
  args = ap.parse_args()
  h, cin, cout = (7, 256, 128) if args.layer == 1 else (14, 128, 1)
  x = jax.random.normal(jax.random.key(0), (args.batch_size, h, h, cin))
  k = 0.02 * jax.random.normal(jax.random.key(1), (4, 4, cout, cin))  # [4, 4, Cout, Cin]
  g = jax.random.normal(jax.random.key(2), (args.batch_size, 2 * h, 2 * h, cout))
  forms = {'taps': conv_transpose.upconv4x4s2_taps, 'windows': conv_transpose.upconv4x4s2_windows,
           'lax_convT': conv_transpose.upconv4x4s2_lax, 'custom': conv_transpose.upconv4x4s2}
  if args.bf16:
    forms['custom_bf16'] = lambda x, k: conv_transpose.upconv4x4s2(x, k, 'bfloat16')
    forms['taps_bf16'] = lambda x, k: conv_transpose.upconv4x4s2_taps(x, k, 'bfloat16')
  ref = forms['taps'](x, k)
  print(f'batch {args.batch_size}: {h}x{h}x{cin} -> {2 * h}x{2 * h}x{cout}; '
        f'{2 * args.batch_size * h * h * cin * 16 * cout / 1e9:.2f} GFLOP per product, '
        f'{jax.devices()[0].platform}')
  print(f'{"form":12s} {"fwd ms":>8s} {"bwd ms":>8s} {"both ms":>8s}  max |y - taps|')
  for name, f in forms.items():
    err = float(jnp.max(jnp.abs(jax.jit(f)(x, k) - ref)))
    fwd = best_ms(f, (x, k), args.iters, args.repeats)
    slow = name in ('windows', 'lax_convT') and args.skip_slow

    def bwd(x, k, g, f=f):
      return jax.vjp(f, x, k)[1](g)

    def both(x, k, g, f=f):
      y, pull = jax.vjp(f, x, k)
      return y, pull(g)

    # The autodiff of the conv forms takes seconds per call on XLA:CPU: time it once.
    it, rep = (1, 1) if name in ('windows', 'lax_convT') else (args.iters, args.repeats)
    b = float('nan') if slow else best_ms(bwd, (x, k, g), it, rep)
    a = float('nan') if slow else best_ms(both, (x, k, g), it, rep)
    print(f'{name:12s} {fwd:8.2f} {b:8.2f} {a:8.2f}  {err:.1e}', flush=True)


if __name__ == '__main__':
  main()
