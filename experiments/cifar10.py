r"""A DCGAN with a spectrally normalised D on CIFAR-10 (32x32 RGB), for a GPU or TPU.

  tfds build cifar10 --file_format=array_record     # once, needs TensorFlow:
                                                    # pip install 'gan_jax[tfds-prepare]'
  python launch.py --config=experiments/cifar10.py --workdir=runs/cifar10
  # or from a folder of PNGs (e.g. an export of the 50 000 training images):
  python launch.py --config=experiments/cifar10.py --workdir=runs/cifar10 \
      --config.data.source=folder --config.data.dir=/path/to/cifar10/train

Data: TFDS ``cifar10`` (train split, 50 000 images), read without TensorFlow. The images take
147 MiB, under ``data.device_cache_mb``, so they live on the device (``data.pipeline='auto'``);
random horizontal flips. Nets: the DCGAN scaled to 32 px (gan_jax/models/dcgan_scaled.py):
G 4x4x512 -> transposed convs 4/2 (256, 128) with BN and ReLU -> 3 channels, tanh; D the mirror
with spectral normalisation on every layer (no BN). Recipe: hinge loss, Adam 2e-4 (beta1 0.5,
beta2 0.999), batch 64, 100 000 G updates, EMA of G. ``--config.model.name=sngan_resnet`` gives
the SNGAN ResNet (experiments/cifar10_sngan.py is that recipe in full).

Published figures, for orientation (not our measurements; protocols differ):
  * SN-GAN, a standard CNN close to this net: FID 25.5 with the hinge loss, 29.3 with the
    standard loss (Miyato et al., 2018, "Spectral Normalization for GANs", Table 2; 100 000
    G updates; real data scores 7.8 under their protocol).
  * DCGAN: FID 37.7, or 36.9 with TTUR (Heusel et al., 2017, Table 1; 50 000 samples against
    the training set).
Evaluation: the Inception FID (gan_jax/evaluation/inception.py, clean-fid resizing) on
``eval_num`` samples against as many training images, every ``eval_every`` steps, when the
Inception weights file is present (converted as the README says); otherwise the run says so once
and trains without it.
Measured: not yet on CIFAR-10 (TFDS cannot download here); ``:smoke`` runs in the tests.
Variant ``:smoke`` (6 steps, widths 8, batch 8) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'cifar10'
  c.data.source = 'tfds'
  c.data.name = 'cifar10'
  c.data.flip = True
  c.model.name = 'dcgan'
  c.model.ch = 64
  c.model.ch_mults = (8, 4, 2)
  c.model.latent_dim = 128
  c.model.spectral_norm = True
  c.loss = 'hinge'
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.batch_size = 64
  c.ema_decay = 0.999
  c.num_steps = 100000
  c.log_every = 100
  c.eval_every = 5000
  c.eval_num = 10000
  c.checkpoint_every = 5000
  if variant == 'smoke':
    config_base.smoke(c)
    c.model.ch = 2
    c.model.latent_dim = 16
    c.batch_size = 8
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/cifar10.py; valid: smoke')
  return c
