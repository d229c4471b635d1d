"""DCGAN on MNIST: the default worked example.

  python launch.py --config=experiments/mnist.py --workdir=runs/mnist

The classic 28x28 DCGAN (same nets as shared/bench/peer_dcgan_torch.py --arch dcgan): Adam 2e-4,
beta1 0.5, batch 64, non-saturating loss, EMA of G.

Measured on the 2-core CPU dev machine (AMD EPYC, jax 0.10.2, commit c13a553 + UpConv4x4s2
col2im): 3000 steps took 40 min 13 s of wall time (train loop 2403 s, compile 6 s) while other
jobs shared the two cores; the step alone runs at ~2.0 steps/s when the machine is quiet
(~25 min for the run). The final EMA grid shows clearly readable digits of all ten classes with
some malformed strokes: docs/images/mnist_dcgan_final.png.
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
