r"""SNGAN (Miyato et al., 2018) on CIFAR-10: the ResNet of the paper, for a GPU or TPU.

  tfds build cifar10 --file_format=array_record           # once, needs TensorFlow:
                                                          # pip install 'gan_jax[tfds-prepare]'
  python launch.py --config=experiments/cifar10_sngan.py --workdir=runs/cifar10_sngan
  python launch.py --config=experiments/cifar10_sngan.py --workdir=runs/cifar10_sngan \
      --config.compute_dtype=bfloat16 --config.num_steps=100000

Data: TFDS ``cifar10`` (train split, 50 000 RGB 32x32 images), read without TensorFlow.
Nets (gan_jax/models/resnet.py, the 32x32 layout): G: z[128] -> dense 4x4x256 -> 3 up ResBlocks
(256 ch, BN + ReLU, nearest 2x upsampling, 1x1 shortcut conv) -> BN, ReLU, conv 3x3 -> tanh;
D: optimized block (128) -> down ResBlock -> 2 ResBlocks (128) -> ReLU -> global sum pool ->
linear, spectral normalisation on every D layer. Recipe (the paper's): hinge loss, n_critic 5,
Adam(2e-4, b1 0.0, b2 0.9) for both nets, batch 64, 50 000 G updates (the literature also
runs 100 000, often with ``--config.optim.schedule=linear``); EMA of G (decay 0.9999) for
samples. Class-conditional (projection D, conditional BN in G): ``--config.model.num_classes=10``
with a trainer that feeds the labels to G and D (both raise without them).

Published reference (not our measurement): unconditional SN-GAN ResNet on CIFAR-10, IS 8.22,
FID 21.7 (Miyato et al., 2018, Table 2); reimplementations report FID about 17-22 depending on
the FID protocol and the step budget; with the projection discriminator and labels, IS 8.62,
FID 17.5 (Miyato & Koyama, 2018). In-training evaluation is off (``eval_num = 0``): the
in-training FD uses a dataset classifier, and there is none for CIFAR-10. Inception FID after the
run, on 50 000 samples (gan_jax/evaluation/inception.py, weights converted as the README says):

  python -m gan_jax.sample --workdir runs/cifar10_sngan --num 50000 --out runs/cifar10_sngan.npz
  # then inception.inception_fd(real_train_images, np.load('runs/cifar10_sngan.npz')['samples'])

Measured: not yet measured.
Variant ``:smoke`` (6 steps, widths 8, batch 16, n_critic 5) is for tests: seconds on a CPU.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'cifar10_sngan'
  c.data.source = 'tfds'
  c.data.name = 'cifar10'
  c.model.name = 'sngan_resnet'
  c.model.latent_dim = 128
  c.model.g_ch = 256             # G width (every ResBlock)
  c.model.d_ch = 128             # D width
  c.model.num_classes = 0        # 10: conditional BN in G and a projection D (needs labels)
  c.model.spectral_norm = True   # on every D layer (the "SN" of SNGAN)
  c.loss = 'hinge'
  c.n_critic = 5
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.0
  c.optim.b2 = 0.9
  c.batch_size = 64
  c.ema_decay = 0.9999
  c.num_steps = 50000
  c.log_every = 100
  c.eval_every = 5000            # sample grids (no FD: eval_num = 0)
  c.eval_num = 0
  c.checkpoint_every = 5000
  if variant == 'smoke':
    # Seconds on a CPU: narrow nets and a small batch. n_critic stays 5: the D steps are one
    # lax.scan, so they cost the smoke run no extra compilation, and the recipe's loop is tested.
    config_base.smoke(c)
    c.model.g_ch = c.model.d_ch = 8
    c.batch_size = 16
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/cifar10_sngan.py; valid: smoke')
  return c
