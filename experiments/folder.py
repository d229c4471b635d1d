r"""A DCGAN on any folder of images: your own data.

  python launch.py --config=experiments/folder.py --workdir=runs/faces \
      --config.data.dir=/path/to/images --config.data.resolution=64

The folder holds image files (PNG, JPEG, WebP, BMP; grayscale, RGB, RGBA or palette, any sizes),
at any depth. When every image sits in a first-level sub-folder (``cats/``, ``dogs/``, ...), the
sub-folders are the classes (``--config.data.labels=none`` ignores them, and a class-conditional
model such as ``--config.model.name=dcgan_cbn_proj`` uses them). Each image is cropped to its
centered square (``data.crop_size`` pixels, or the short side) and resized with PIL's
antialiased bicubic to ``data.resolution`` (32, 64, 128 or 256 for the DCGAN and ResNet models;
``--config.data.crop=none`` resizes the whole image instead); ``data.channels`` 3 (RGB) or 1.
``data.flip`` adds random horizontal flips. An unreadable file stops the run with its name;
``--config.data.skip_bad_files=True`` skips and counts such files instead.

Input pipeline: a dataset that fits in ``data.device_cache_mb`` (1 GiB; 64 px RGB: about 87 000
images) is decoded once and held on every device; a bigger one streams through grain
(gan_jax/data/stream.py): each host decodes only its shard with ``data.workers`` processes, and
the checkpoints hold the stream's position, so a resumed run reads exactly what an
uninterrupted one would. ``--config.data.pipeline=stream`` forces streaming.

Nets: the DCGAN scaled to the resolution (gan_jax/models/dcgan_scaled.py: G 4x4 -> transposed
convs 4/2 with BN and ReLU, one per doubling; D the mirror, BN and LeakyReLU 0.2), width
``model.ch`` times ``model.ch_mults``; ``--config.model.name=sngan_resnet`` for the ResNet.
Recipe (Radford et al., 2016, which trained this net on faces and bedrooms): non-saturating
loss, Adam 2e-4 (beta1 0.5), batch 64, EMA of G for samples.

Evaluation: the Inception FID (gan_jax/evaluation/inception.py, clean-fid resizing) against
``eval_num`` of the folder's images, when the Inception weights file is present (the run says
once when it is not, and trains without it); ``python -m gan_jax.sample`` draws grids.
Measured: this config's ``:smoke`` variant in the tests only (no folder of real photos here).
Variant ``:smoke`` (32 px, narrow nets, 6 steps) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'folder'
  c.data.source = 'folder'
  c.data.name = 'folder'
  c.data.dir = ''                # required: --config.data.dir=/path/to/images
  c.data.resolution = 64
  c.data.channels = 3
  c.data.flip = True
  c.model.name = 'dcgan'
  c.model.ch = 64
  c.model.latent_dim = 100
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.5
  c.optim.b2 = 0.999
  c.batch_size = 64
  c.ema_decay = 0.999
  c.num_steps = 50000
  c.log_every = 100
  c.eval_every = 2500
  c.eval_num = 5000
  c.checkpoint_every = 2500
  if variant == 'smoke':
    config_base.smoke(c)
    c.data.resolution = 32
    c.data.workers = 0
    c.model.ch = 8
    c.model.latent_dim = 16
    c.batch_size = 8
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/folder.py; valid: smoke')
  return c
