"""DCGAN on Fashion-MNIST: the MNIST recipe on a harder 28x28 dataset.

  python launch.py --config=experiments/fashion.py --workdir=runs/fashion
  python -m gan_jax.seeds --config=experiments/fashion.py --seeds=3      # mean ± sd table

The same nets, optimizer and steps as experiments/mnist.py (the classic 28x28 DCGAN, the nets of
shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4, beta1 0.5, batch 64, non-saturating
loss, EMA of G, 3000 steps. Data: ``$GAN_JAX_DATA_DIR/fashion-mnist`` (the gzip IDX files), else
TFDS ``fashion_mnist``.

Measured (README, "Results"): 3 seeds on one NVIDIA H200 (benchmarks/gpu_run.sh, commit
60941da; 3000 steps took 76-80 s wall each with 12 runs sharing the GPU), N = 10 000: FD
114.5 ± 3.3, score 5.35 ± 0.06, KID 13.0 ± 0.3, precision 0.675 ± 0.009, recall
0.544 ± 0.062, density 0.693 ± 0.014, coverage 0.365 ± 0.011, 10/10 classes.
Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'fashion'
  c.data.name = 'fashion_mnist'
  c.model.name = 'dcgan'
  c.model.ngf = 64
  c.model.ndf = 64
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  if variant == 'smoke':
    config_base.smoke(c)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/fashion.py; valid: smoke')
  return c
