"""DCGAN on MNIST: the default worked example.

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

The classic 28x28 DCGAN (same nets as shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4,
beta1 0.5, batch 64, non-saturating loss, EMA of G. The convolutions' matmuls take bf16 operands
with float32 accumulation (``model.matmul_dtype``; params, optimizer and all else float32).

Measured (README, "Results"), 3 seeds, N = 10 000, 3000 steps:
- bf16 matmul operands (this default), one NVIDIA H100, commit 20b7396: FD 155.5 ± 2.3, score
  6.41 ± 0.07, KID 30.0 ± 0.3, precision 0.592 ± 0.001, recall 0.744 ± 0.007, density
  0.435 ± 0.001, coverage 0.331 ± 0.009, 10/10 classes;
- float32 matmuls, the same GPU and commit: FD 155.1 ± 0.4, score 6.44 ± 0.08, KID 29.9 ± 0.5,
  precision 0.596 ± 0.016, recall 0.740 ± 0.018, density 0.436 ± 0.012, coverage 0.329 ± 0.009;
  every metric within seed variance of the bf16 runs (benchmarks/README.md).
Float32 on one NVIDIA H200 (commit 60941da): FD 156.7 ± 4.1. On the 2-core CPU dev machine
(AVX-512 host) float32 seed 0 took 11 min 34 s and gave FD 159.4. The final EMA grid shows
readable digits of all ten classes with some malformed strokes: docs/images/mnist_dcgan_final.png.
On a CPU without bf16 dot units (no AVX512-BF16 or AMX) set ``model.matmul_dtype='float32'``.
Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'mnist'
  c.data.name = 'mnist'
  c.model.name = 'dcgan'
  c.model.ngf = 64               # G width (peer: ngf)
  c.model.ndf = 64               # D width (peer: ndf)
  # bf16 operands, float32 accumulation, in the convs' matmuls: the DCGAN step +37 % on the
  # 2-core AVX512-BF16 CPU (benchmarks/README.md); quality within seed variance of float32.
  c.model.matmul_dtype = 'bfloat16'
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  if variant == 'smoke':
    config_base.smoke(c)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/mnist.py; valid: smoke')
  return c
