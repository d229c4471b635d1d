"""Class-conditional DCGAN on MNIST: class-conditional BatchNorm in G, projection D.

  python launch.py --config=experiments/mnist_cond.py --workdir=runs/mnist_cond
  python launch.py --config=experiments/mnist_cond.py:concat --workdir=runs/mnist_concat
  python launch.py --config=experiments/mnist_cond.py:concat_proj --workdir=runs/mnist_concat_proj
  python -m gan_jax.evaluate --workdir=runs/mnist_cond --num 10000      # FD, ..., class_acc
  python -m gan_jax.sample --workdir=runs/mnist_cond --mode=classes --grid=classes.png

The nets of experiments/mnist.py (the 28x28 DCGAN, ngf = ndf = 64) told the class y of each
image (model 'dcgan_cbn_proj', gan_jax/models/cond.py): G's BatchNorms take a per-class scale
and shift (statistics shared by all classes), and D adds the projection term <embed(y), h(x)>
to its logit (Miyato & Koyama, 2018). D sees real images with their labels and fakes with the
uniformly drawn labels G made them for. The same optimizer, batch and steps as mnist.py: Adam
2e-4, beta1 0.5, batch 64, non-saturating loss, EMA of G, 3000 steps. The number of classes
comes from the data (10).

Variant ``:concat`` is the original cGAN baseline (Mirza & Osindero, 2014; model
'dcgan_concat'): the one-hot label concatenated to z in G and as 10 constant input planes in D.
Variant ``:concat_proj`` ('dcgan_concat_proj') pairs that G with the projection D. (A 1000-step
CPU probe at ngf = ndf = 16 found the cBN G slow to follow its labels; see
gan_jax/models/cond.py.)
Training evaluations log ``eval/class_acc``: the share of samples (balanced over the classes)
that the evaluation classifier puts in the class they were made for.

Measured: not yet measured (FD, class_acc and wall time at 3000 steps, cBN + projection vs
the two variants, to be filled in from a GPU run).
The sample pictures have one row per class. Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base

VARIANTS = ('concat', 'concat_proj', 'smoke')


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'mnist_cond'
  c.data.name = 'mnist'
  c.model.name = 'dcgan_cbn_proj'  # or variants :concat, :concat_proj
  c.model.ngf = 64
  c.model.ndf = 64
  c.num_steps = 3000
  c.eval_every = 500
  c.checkpoint_every = 500
  c.num_grid = 100                 # 10 classes (rows) x 10 fixed latents (columns)
  variants = variant.split(',') if variant else []
  for v in variants:
    if v not in VARIANTS:
      raise ValueError(f'unknown variant {v!r} of experiments/mnist_cond.py; valid: '
                       f'{", ".join(VARIANTS)}')
  if 'concat' in variants and 'concat_proj' in variants:
    raise ValueError('variants concat and concat_proj of experiments/mnist_cond.py exclude each '
                     'other: each picks the model')
  if 'concat' in variants:
    c.name = 'mnist_concat'
    c.model.name = 'dcgan_concat'
  if 'concat_proj' in variants:
    c.name = 'mnist_concat_proj'
    c.model.name = 'dcgan_concat_proj'
  if 'smoke' in variants:
    config_base.smoke(c)
    c.num_grid = 20                # 10 rows x 2 columns
  return c
