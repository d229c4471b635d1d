r"""A ResNet GAN on FFHQ faces at 256x256, streamed from a folder of PNGs: for GPU/TPU hosts.

  # FFHQ: 70 000 aligned face PNGs (github.com/NVlabs/ffhq-dataset: images1024x1024/, 89 GB;
  # TFDS has no FFHQ builder). Resized here on the fly; pre-resizing to 256 px once (e.g. with
  # PIL) makes decoding ~16x cheaper.
  python launch.py --config=experiments/ffhq256.py --workdir=runs/ffhq256 \
      --config.data.dir=/path/to/ffhq/images1024x1024

  # several hosts (each runs the same command; see README "Several hosts"):
  python launch.py --config=experiments/ffhq256.py --workdir=gs://bucket/ffhq256 \
      --config.data.dir=/mnt/ffhq --coordinator_address=host0:1234 --num_processes=4 \
      --process_id=$i

Data: every PNG of ``data.dir`` (any sub-folders), resized to 256x256 with PIL's antialiased
bicubic, random horizontal flips. 70 000 images of 256x256x3 take 12.8 GiB, so they stream
(gan_jax/data/stream.py): each host decodes only its own shard with ``data.workers`` processes,
and the checkpoint holds every host's stream position.

Nets: the SNGAN/BigGAN-style ResNet at 256 px (gan_jax/models/resnet.py): G from 4x4 through
six up blocks, widths ``g_ch`` x (16, 16, 8, 8, 4, 2, 1) (the 256 px default of
``model.ch_mults``), BN + ReLU, nearest 2x upsampling; D the mirror of down blocks with
spectral normalisation on every layer, a projection head when conditional. Recipe: hinge loss,
Adam 2e-4 (beta1 0, beta2 0.999), batch 64, bfloat16 activations on GPU/TPU, EMA of G (0.9999).

Published figures, for orientation (not our measurements; FID-50k against all 70 000 images,
with flips): R3GAN 2.75 and StyleGAN2 3.78 (Huang et al., 2024, "The GAN is dead; long live the
GAN! A Modern GAN Baseline", Table 4). A ResNet GAN of this size is far from those; the config is
the pipeline and the nets at scale, not a tuned recipe.
Evaluation: the Inception FID (clean-fid resizing) against ``eval_num`` of the images, when the
Inception weights file is present; otherwise the run says so once.
Measured: not yet (no FFHQ and no GPU here); ``:smoke`` runs in the tests on a generated folder.
Variant ``:smoke`` (32 px, widths 4, 6 steps, streamed in-process) is for tests.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'ffhq256'
  c.data.source = 'folder'
  c.data.name = 'ffhq'
  c.data.dir = ''                # required: --config.data.dir=/path/to/ffhq
  c.data.resolution = 256
  c.data.channels = 3
  c.data.flip = True
  c.data.workers = 8
  c.model.name = 'sngan_resnet'
  c.model.g_ch = 32
  c.model.d_ch = 32
  c.model.latent_dim = 128
  c.model.spectral_norm = True
  c.compute_dtype = 'bfloat16'
  c.loss = 'hinge'
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.0
  c.optim.b2 = 0.999
  c.batch_size = 64
  c.ema_decay = 0.9999
  c.num_steps = 200000
  c.log_every = 100
  c.eval_every = 10000
  c.eval_num = 10000
  c.checkpoint_every = 2000
  if variant == 'smoke':
    config_base.smoke(c)
    c.data.resolution = 32
    c.data.pipeline = 'stream'
    c.data.workers = 0
    c.model.g_ch = c.model.d_ch = 4
    c.model.latent_dim = 16
    c.compute_dtype = 'float32'
    c.batch_size = 8
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/ffhq256.py; valid: smoke')
  return c
