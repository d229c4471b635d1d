"""DCGAN on Fashion-MNIST, self-conditioned on k-means clusters: the MNIST recipe.

  python launch.py --config=experiments/fashion.py --workdir=runs/fashion
  python -m gan_jax.seeds --config=experiments/fashion.py --seeds=3      # mean ± sd table

The recipe of experiments/mnist.py (issue #22): the 28x28 DCGAN nets with G told, and D
projecting, one of 50 k-means clusters of the training images (label-free; gan_jax/data/
clusters.py), fakes' clusters drawn with the clusters' shares, Adam 1e-3 with beta1 = 0 and
beta2 = 0.99, batch 64, non-saturating loss, EMA of G, 6000 steps.
Data: ``$GAN_JAX_DATA_DIR/fashion-mnist`` (the gzip IDX files), else TFDS ``fashion_mnist``.

Screen (seed 0, one CPU core each with another run on the other, in-training FD at 2000
samples): this recipe 46.6 at step 1000; the previous default (unconditional DCGAN, Adam 4e-4,
beta1 0.5) was at 170 at step 1000 and 93 at step 3000, and its 3 seeds of 3000 steps measured
FD 87.2 ± 1.3 (N = 10 000).

Measured, 3 seeds, N = 10 000, EMA G (``python -m gan_jax.seeds --config=experiments/fashion.py
--seeds=3``, commit f12281a, the 2-core CPU shared with the CI suite: 674-882 s of training per
seed): FD 9.65 ± 0.70 (9.66, 10.35, 8.95), precision 0.852 ± 0.003, recall 0.674 ± 0.013,
coverage 0.843 ± 0.010, score 7.69 ± 0.03, KID 0.99 ± 0.09, 10/10 classes.
Picture: docs/images/fashion_default_final.png.
Variant ``:smoke`` (6 steps, narrow nets) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'fashion'
  c.data.name = 'fashion_mnist'
  c.data.clusters = 50
  c.model.name = 'dcgan_concat_proj'
  c.model.ngf = 64
  c.model.ndf = 64
  c.model.matmul_dtype = 'bfloat16'  # as experiments/mnist.py
  c.share_g_forward = True
  c.optim.g_lr = 1e-3
  c.optim.d_lr = 1e-3
  c.optim.b1 = 0.0
  c.optim.b2 = 0.99
  c.num_steps = 6000
  c.eval_every = 1000
  c.checkpoint_every = 1000
  if variant == 'smoke':
    config_base.smoke(c)
    c.model.ngf = c.model.ndf = 8
    c.batch_size = 16
    c.data.clusters = 4
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/fashion.py; valid: smoke')
  return c
