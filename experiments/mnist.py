"""DCGAN on MNIST: the default worked example.

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

The classic 28x28 DCGAN (same nets as shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4,
beta1 0.5, batch 64, non-saturating loss, EMA of G.

Measured on the 2-core CPU dev machine: WALLTIME_TBD.
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
