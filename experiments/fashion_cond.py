"""Class-conditional DCGAN on Fashion-MNIST: the recipe of experiments/mnist_cond.py.

  python launch.py --config=experiments/fashion_cond.py --workdir=runs/fashion_cond
  python launch.py --config=experiments/fashion_cond.py:cbn_proj --workdir=runs/fashion_cbn
  python -m gan_jax.evaluate --workdir=runs/fashion_cond --num 10000    # FD, ..., class_acc
  python -m gan_jax.sample --workdir=runs/fashion_cond --mode=classes --cols=10 --grid=classes.png

experiments/mnist_cond.py on Fashion-MNIST (10 classes: T-shirt, trouser, pullover, dress, coat,
sandal, shirt, sneaker, bag, ankle boot), with its recipe (config_base.conditional_recipe,
issue #22): the 28x28 DCGAN's nets (ngf = ndf = 64), the one-hot label concatenated to z in G
and a projection D ('dcgan_concat_proj'), each class split into 20 k-means clusters that G and
D are told (``config.data.clusters_per_class``; every sample keeps its class), Adam 1e-3,
beta 0 / 0.99, the rate decayed linearly to 0 over the second half, 6000 steps, batch 64,
non-saturating loss, EMA of G, bf16 matmul operands, one G forward per step. Data:
``$GAN_JAX_DATA_DIR/fashion-mnist`` (the gzip IDX files), else TFDS ``fashion_mnist``.

Measured, 3 seeds, N = 10 000, EMA G (``python -m gan_jax.seeds
--config=experiments/fashion_cond.py --seeds=3``, fourteenth session, 2-core CPU, each run on
one core beside another run and the CI suite: 1161-1470 s per seed): FD 3.61 ± 0.26 (3.42,
3.49, 3.90), class accuracy 0.9315 ± 0.0008 (the evaluation classifier itself: 92.3 % on the
test set), precision 0.858, recall 0.716, coverage 0.920, score 8.46. The 2016 recipe with the
cBN G (the default until then): FD 113.4 ± 2.5, class accuracy 0.598.
Pictures: docs/images/fashion_cond_classes.png (``--mode=classes --cols=10``: row c is class
c, column j its j-th cluster), docs/images/fashion_cond_nearest.png (``--mode=nearest``:
1000 samples' nearest-training-image distance, 5th percentile / median, 2.54 / 3.71 against
2.44 / 3.71 for held-out test images, so no copies).

Variants keep the 2016 recipe (Adam 2e-4, beta1 0.5, 3000 steps, the classes alone):
``:cbn_proj`` (class-conditional BatchNorm in G, projection D; the default until the
fourteenth session) and ``:concat`` (the cGAN of Mirza & Osindero, 2014). ``:cbn_proj`` on one
NVIDIA H200 (benchmarks/gpu_breadth.sh, 2026-11-26, commit b0cacc3), 3 seeds, N = 10 000:
FD 113.4 ± 2.5, class_acc 0.598 ± 0.009, precision 0.863, recall 0.354, coverage 0.372.
``:concat_proj`` is the default's model under another name.
Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base

CLUSTERS_PER_CLASS = 20


def get_config(variant: str = ''):
  c = config_base.conditional_dcgan(
      'fashion_cond', 'fashion_mnist', 'dcgan_concat_proj', variant,
      'experiments/fashion_cond.py',
      {'cbn_proj': ('fashion_cond_cbn', 'dcgan_cbn_proj'),
       'concat': ('fashion_concat', 'dcgan_concat'),
       'concat_proj': ('fashion_concat_proj', 'dcgan_concat_proj')})
  # The recipe of experiments/mnist_cond.py (config_base.conditional_recipe): Adam 1e-3,
  # beta 0 / 0.99, lr decay over the second half, 6000 steps, bf16 matmul operands, one G
  # forward per step, each class split into 20 k-means clusters that G and D are told.
  return config_base.conditional_recipe(c, variant, CLUSTERS_PER_CLASS)
