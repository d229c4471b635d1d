"""DCGAN on Fashion-MNIST: the MNIST recipe on a harder 28x28 dataset.

  python launch.py --config=experiments/fashion.py --workdir=runs/fashion
  python -m gan_jax.seeds --config=experiments/fashion.py --seeds=3      # mean ± sd table

The same nets, optimizer and steps as experiments/mnist.py (the classic 28x28 DCGAN, the nets of
shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4, beta1 0.5, batch 64, non-saturating
loss, EMA of G, 3000 steps. Data: ``$GAN_JAX_DATA_DIR/fashion-mnist`` (the gzip IDX files), else
TFDS ``fashion_mnist``.

Measured: see the README's results table (3 seeds, N = 10 000, against the PyTorch peer).
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
