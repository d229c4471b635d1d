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

Measured on one NVIDIA H200 (benchmarks/gpu_breadth.sh, 2026-11-26, commit b0cacc3; 3000 steps
took 61-63 s wall per seed, ~24 s of it compiling, with 11 runs sharing the GPU), 3 seeds,
N = 10 000: FD 113.4 ± 2.5, score 5.70 ± 0.07, KID 12.2 ± 0.4, precision 0.863 ± 0.005,
recall 0.354 ± 0.031, density 1.19 ± 0.02, coverage 0.372 ± 0.005, class_acc 0.598 ± 0.009
(the classifier itself: 92.3 %). Against the unconditional experiments/fashion.py (FD 114.5 ± 3.3,
recall 0.544): the same FD, higher precision, lower recall. On MNIST the cBN G followed its labels
poorly (class_acc 0.46) where concat G + projection D reached 0.99, so experiments/mnist_cond.py
defaults to that pair; ``:concat_proj`` here is the same pair, not yet measured on Fashion-MNIST
(no GPU time was left). Pictures: docs/images/fashion_cond_classes.png,
docs/images/fashion_cond_nearest.png (nearest training images: 1000 samples' median feature
distance 3.83 against 3.71 for held-out test images, so no copies).
Variant ``:smoke`` (6 steps) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  return config_base.conditional_dcgan(
      'fashion_cond', 'fashion_mnist', 'dcgan_cbn_proj', variant, 'experiments/fashion_cond.py',
      {'concat': ('fashion_concat', 'dcgan_concat'),
       'concat_proj': ('fashion_concat_proj', 'dcgan_concat_proj')})
