r"""SNGAN (Miyato et al., 2018) on MNIST: the ResNet nets and the paper's training recipe.

  python launch.py --config=experiments/mnist_sngan.py --workdir=runs/mnist_sngan
  python launch.py --config=experiments/mnist_sngan.py --workdir=runs/mnist_sngan \
      --config.compute_dtype=bfloat16                      # on a GPU/TPU

Nets (gan_jax/models/resnet.py, the 28x28 layout): G: z[128] -> dense 7x7 -> 2 up ResBlocks
(7 -> 14 -> 28, BN + ReLU, nearest 2x upsampling) -> BN, ReLU, conv 3x3 -> tanh; D: optimized
block + down ResBlock (28 -> 14 -> 7) + 2 ResBlocks -> ReLU -> global sum pool -> linear, with
spectral normalisation on every D layer. Widths 128 / 128 (g_ch, d_ch): half the CIFAR-10 G
width, as a 28x28 grey-scale dataset needs less. Recipe: hinge loss, 5 D steps per G step,
Adam(2e-4, b1 0.0, b2 0.9) for both nets, batch 64, EMA of G (decay 0.999), 10 000 G steps
(50 000 D steps); FD and classifier score on 5000 samples every 1000 steps.

Measured on one NVIDIA H200 (benchmarks/gpu_breadth.sh, 2026-11-26, commit b0cacc3), 3 seeds
launched with ``--config.num_steps=3000`` to compare with the DCGAN at equal G steps. The 200 s
per-run limit of that GPU call stopped them first, at G steps 2359, 2123 and 2096 (SIGTERM:
each saved a checkpoint and stopped cleanly; ~11-12 G steps/s with 11 runs sharing the GPU).
Evaluated there, N = 10 000: FD 119.7 ± 3.2, score 7.01 ± 0.03, KID 24.3 ± 1.3, precision
0.719 ± 0.006, recall 0.812 ± 0.007, density 0.630 ± 0.012, coverage 0.608 ± 0.005, 10/10
classes; against the classic DCGAN (experiments/mnist_dcgan_classic.py, 3000 G steps: FD 156.7 ± 4.1, score 6.45,
recall 0.746, coverage 0.334) it is better on every metric with fewer G steps. The full
10 000-step recipe has not been run. Samples: docs/images/mnist_sngan_samples.png.
Variant ``:smoke`` (6 steps, widths 8, batch 16, n_critic 5) is for tests: seconds on a CPU.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'mnist_sngan'
  c.data.name = 'mnist'
  c.model.name = 'sngan_resnet'
  c.model.latent_dim = 128
  c.model.g_ch = 128             # G width (every ResBlock)
  c.model.d_ch = 128             # D width
  c.model.num_classes = 0        # > 0: conditional BN in G and a projection D (needs labels)
  c.model.spectral_norm = True   # on every D layer (the "SN" of SNGAN)
  c.loss = 'hinge'
  c.n_critic = 5
  c.optim.g_lr = 2e-4
  c.optim.d_lr = 2e-4
  c.optim.b1 = 0.0
  c.optim.b2 = 0.9
  c.batch_size = 64
  c.ema_decay = 0.999
  c.num_steps = 10000
  c.log_every = 100
  c.eval_every = 1000
  c.checkpoint_every = 1000
  if variant == 'smoke':
    # Seconds on a CPU: narrow nets and a small batch. n_critic stays 5: the D steps are one
    # lax.scan, so they cost the smoke run no extra compilation, and the recipe's loop is tested.
    config_base.smoke(c)
    c.model.g_ch = c.model.d_ch = 8
    c.batch_size = 16
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/mnist_sngan.py; valid: smoke')
  return c
