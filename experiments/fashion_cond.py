"""Class-conditional DCGAN on Fashion-MNIST: class-conditional BatchNorm in G, projection D.

  python launch.py --config=experiments/fashion_cond.py --workdir=runs/fashion_cond
  python launch.py --config=experiments/fashion_cond.py:concat --workdir=runs/fashion_concat
  python -m gan_jax.evaluate --workdir=runs/fashion_cond --num 10000    # FD, ..., class_acc

experiments/mnist_cond.py on Fashion-MNIST (10 classes: T-shirt, trouser, pullover, dress, coat,
sandal, shirt, sneaker, bag, ankle boot): model 'dcgan_cbn_proj' (per-class BatchNorm scale and
shift in G, projection D; gan_jax/models/cond.py), ngf = ndf = 64, Adam 2e-4, beta1 0.5, batch
64, non-saturating loss, EMA of G, 3000 steps, as experiments/fashion.py. Data:
``$GAN_JAX_DATA_DIR/fashion-mnist`` (the gzip IDX files), else TFDS ``fashion_mnist``.
Variant ``:concat`` is the concat-label cGAN baseline (Mirza & Osindero, 2014), ``:concat_proj``
its G with the projection D.

Measured: not yet measured (FD, class_acc against the classifier's 92.3 % test accuracy, and
wall time at 3000 steps, to be filled in from a GPU run).
Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base

VARIANTS = ('concat', 'concat_proj', 'smoke')


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'fashion_cond'
  c.data.name = 'fashion_mnist'
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
      raise ValueError(f'unknown variant {v!r} of experiments/fashion_cond.py; valid: '
                       f'{", ".join(VARIANTS)}')
  if 'concat' in variants and 'concat_proj' in variants:
    raise ValueError('variants concat and concat_proj of experiments/fashion_cond.py exclude each '
                     'other: each picks the model')
  if 'concat' in variants:
    c.name = 'fashion_concat'
    c.model.name = 'dcgan_concat'
  if 'concat_proj' in variants:
    c.name = 'fashion_concat_proj'
    c.model.name = 'dcgan_concat_proj'
  if 'smoke' in variants:
    config_base.smoke(c)
    c.num_grid = 20                # 10 rows x 2 columns
  return c
