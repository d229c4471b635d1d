r"""A DCGAN on CelebA faces at 64x64: the streaming input pipeline's worked example.

  tfds build celeb_a --file_format=array_record     # once, needs TensorFlow (the images come
                                                    # from Google Drive, which often refuses
                                                    # on quota: retry later, or use a folder)
  python launch.py --config=experiments/celeba64.py --workdir=runs/celeba64
  # or from the aligned JPEGs (img_align_celeba/, 202 599 files of 178x218):
  python launch.py --config=experiments/celeba64.py --workdir=runs/celeba64 \
      --config.data.source=folder --config.data.dir=/path/to/img_align_celeba

Data: TFDS ``celeb_a`` (train split, 162 770 aligned 178x218 photos), each cropped to its
central 108x108 square and resized to 64x64 with PIL's antialiased bicubic (the crop of
DCGAN-tensorflow, which the TTUR figures below used); random horizontal flips. At 64 px the
images take 1.9 GiB, more than ``data.device_cache_mb`` (1 GiB), so they stream: grain reads
each host's shard with ``data.workers`` decoding processes, and the checkpoints hold the
stream's position (gan_jax/data/stream.py).

Nets: the DCGAN of Radford et al. (2016) at 64 px (gan_jax/models/dcgan_scaled.py): G 4x4x512
-> transposed convs 4/2 (256, 128, 64) with BN and ReLU -> 3 channels, tanh; D the mirror with
BN and LeakyReLU 0.2. Recipe: non-saturating loss, Adam 2e-4 (beta1 0.5), batch 64, EMA of G.

Published figures, for orientation (not our measurements): DCGAN on CelebA 64x64, FID 21.4,
and 12.5 with TTUR (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule...",
Table 1; 50 000 samples against all cropped images).
Evaluation: the Inception FID (clean-fid resizing) against ``eval_num`` training images, when
the Inception weights file is present; otherwise the run says so once.
Measured: not yet (no CelebA here); ``:smoke`` runs in the tests on TFDS's mock data.
Variant ``:smoke`` (32 px, widths 4, 6 steps, in-process reading) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'celeba64'
  c.data.source = 'tfds'
  c.data.name = 'celeb_a'
  c.data.resolution = 64
  c.data.channels = 3
  c.data.crop = 'center'
  c.data.crop_size = 108
  c.data.flip = True
  c.data.pipeline = 'auto'       # streams: 1.9 GiB of images > device_cache_mb
  c.data.workers = 4
  c.model.name = 'dcgan'
  c.model.ch = 64
  c.model.latent_dim = 100
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
    c.data.resolution = 32
    c.data.pipeline = 'stream'
    c.data.workers = 0
    c.model.ch = 4
    c.model.latent_dim = 16
    c.batch_size = 8
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/celeba64.py; valid: smoke')
  return c
