"""DCGAN on MNIST: the default worked example.

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

The classic 28x28 DCGAN (same nets as shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4,
beta1 0.5, batch 64, non-saturating loss, EMA of G.

Measured (README, "Results"): 3 seeds on one NVIDIA H200 (benchmarks/gpu_run.sh, commit
60941da; 3000 steps took 74-83 s wall each with 12 runs sharing the GPU, ~30 s of it compiling),
N = 10 000: FD 156.7 ± 4.1, score 6.45 ± 0.10, KID 30.3 ± 0.8, precision 0.596 ± 0.014,
recall 0.746 ± 0.015, density 0.440 ± 0.012, coverage 0.334 ± 0.015, 10/10 classes. On the
2-core CPU dev machine (AVX-512 host) seed 0 took 11 min 34 s and gave FD 159.4. The final EMA
grid shows readable digits of all ten classes with some malformed strokes:
docs/images/mnist_dcgan_final.png.
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
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  if variant == 'smoke':
    config_base.smoke(c)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/mnist.py; valid: smoke')
  return c
