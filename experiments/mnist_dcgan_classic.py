"""The classic DCGAN on MNIST (Radford et al., 2016 recipe): the peer-equivalent config.

  python launch.py --config=experiments/mnist_dcgan_classic.py --workdir=runs/mnist_dcgan_classic
  python benchmarks/throughput.py                  # times this config's step against the peer

The speed benchmark's reference against ../shared/bench/peer_dcgan_torch.py --arch dcgan: the
same nets (ngf = ndf = 64), Adam 2e-4, beta1 0.5, batch 64, non-saturating loss, 3000 steps, and
the peer's algorithm (G runs forward once per step and the G update reuses it,
``share_g_forward``), plus our EMA of G. The convolutions' matmuls take bf16 operands with
float32 accumulation (``model.matmul_dtype``; params, optimizer and all else float32). This is
experiments/mnist.py as it stood until issue #22 (commit 59064df) and stays fixed, so that
benchmarks/throughput.py, ab.py, step_parts.py and xla_flags.py keep timing a like-for-like step
however the default recipe of experiments/mnist.py changes.

Measured (as experiments/mnist.py, the same config), N = 10 000 samples per seed, 3000 steps:
- this config (bf16 operands, shared G forward), 4 seeds on the 2-core CPU, commit 5fe4de3: FD
  158.0 ± 4.1, score 6.44 ± 0.02, KID 30.6 ± 0.7, precision 0.598 ± 0.022, recall 0.746 ±
  0.023, density 0.444 ± 0.025, coverage 0.331 ± 0.010, 10/10 classes; the same seeds with
  two G forwards: FD 157.5 ± 1.5, recall 0.733 ± 0.032 (benchmarks/README.md);
- bf16 matmul operands, two G forwards, 3 seeds on one NVIDIA H100, commit 20b7396: FD
  155.5 ± 2.3, score 6.41 ± 0.07, KID 30.0 ± 0.3, precision 0.592 ± 0.001, recall 0.744 ±
  0.007, density 0.435 ± 0.001, coverage 0.331 ± 0.009, 10/10 classes;
- float32 matmuls, the same GPU and commit: FD 155.1 ± 0.4, score 6.44 ± 0.08, KID 29.9 ± 0.5,
  precision 0.596 ± 0.016, recall 0.740 ± 0.018, density 0.436 ± 0.012, coverage 0.329 ± 0.009;
  every metric within seed variance of the bf16 runs (README, "Results").
Float32 on one NVIDIA H200 (commit 60941da): FD 156.7 ± 4.1. On the 2-core CPU dev machine
(AVX-512 host) float32 seed 0 took 11 min 34 s and gave FD 159.4. The PyTorch peer, 3 seeds of
3000 steps on that CPU: FD 164.1 ± 5.2 (README, "Results"). The final EMA grid shows readable
digits of all ten classes with some malformed strokes: docs/images/mnist_dcgan_final.png.
On a CPU without bf16 dot units (no AVX512-BF16 or AMX) set ``model.matmul_dtype='float32'``.
Variant ``:smoke`` (6 steps, ngf = ndf = 8, batch 16) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'mnist_dcgan_classic'
  c.data.name = 'mnist'
  c.model.name = 'dcgan'
  c.model.ngf = 64               # G width (peer: ngf)
  c.model.ndf = 64               # D width (peer: ndf)
  c.loss = 'ns'                  # the peer's non-saturating BCE
  c.batch_size = 64
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.optim.schedule = 'constant'
  # bf16 operands, float32 accumulation, in the convs' matmuls: the DCGAN step +37 % on the
  # 2-core AVX512-BF16 CPU (benchmarks/README.md); quality within seed variance of float32.
  c.model.matmul_dtype = 'bfloat16'
  # One G forward per step, its pullback reused by the G update (the peer's algorithm: the G
  # update sees the D update's fakes): the step 17 % fewer FLOPs, +20 % steps/s on the 2-core
  # CPU. 4 seeds x 3000 steps on that CPU, against two G forwards: every metric within seed
  # variance (Welch p >= 0.36; benchmarks/README.md).
  c.share_g_forward = True
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  if variant == 'smoke':
    config_base.smoke(c)
    c.model.ngf = c.model.ndf = 8   # seconds on a CPU; the speed benchmark uses the full widths
    c.batch_size = 16
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/mnist_dcgan_classic.py; valid: '
                     'smoke')
  return c
