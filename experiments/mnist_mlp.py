"""The MLP GAN of Goodfellow et al. (2014) on MNIST: the mission's worked example.

  python launch.py --config=experiments/mnist_mlp.py

G: z(100) -> 1200 ReLU -> 1200 ReLU -> 784 tanh.
D: dropout .2 -> maxout 240x5 -> dropout .5 -> maxout 240x5 -> dropout .5 -> logit.
Adam 2e-4, beta1 0.5, batch 64, non-saturating loss (as shared/bench/peer_dcgan_torch.py --arch mlp).

Measured on the 2-core CPU dev machine (with the defaults below): 10000 steps in 4 min 17 s of
wall time (train loop 246 s, compile 3.4 s), peak RSS 2.0 GB.
The final EMA grid shows recognisable but noisy digits of most classes, the look of the
paper's figure 2: docs/images/mnist_mlp_final.png.
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'mnist_mlp'
  c.data.name = 'mnist'
  c.model.name = 'mlp'
  c.model.g_hidden = (1200, 1200)
  c.model.d_hidden = (240, 240)
  c.model.d_pieces = 5
  c.model.d_input_dropout = 0.2
  c.model.d_dropout = 0.5
  # The peer's algorithm (one G forward per step, its pullback reused by the G update) and bf16
  # matmul operands with float32 accumulation: +31 % steps/s on the 2-core AVX512-BF16 CPU, and
  # over 3 seeds at 3000 steps every metric within seed variance of the float32, two-forward
  # step (benchmarks/README.md). On a CPU without bf16 dot units set matmul_dtype='float32'.
  c.share_g_forward = True
  c.model.matmul_dtype = 'bfloat16'
  c.num_steps = 10000
  c.eval_every = 1000
  c.checkpoint_every = 1000
  if variant == 'smoke':
    config_base.smoke(c)
  elif variant:
    raise ValueError(f'unknown variant {variant!r} of experiments/mnist_mlp.py; valid: smoke')
  return c
