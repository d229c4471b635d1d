"""Mixture of 2-D Gaussians with MLP G and D: the embedded default. Needs no data.

  python launch.py --config=experiments/toy2d.py                      # 8-mode ring
  python launch.py --config=experiments/toy2d.py:grid                 # 5x5 grid
  python launch.py --config=experiments/toy2d.py:grid,r1              # + R1 (gamma 0.01)
  python launch.py --config=experiments/toy2d.py --config.data.name=grid

Writes scatter plots of real (grey) vs generated (red) points to <workdir>/samples/.
Measured on the 2-core CPU dev machine: the ring, 5000 steps, 60 s of wall time (train loop
49 s including a 5 s compile); the final scatter plot covers all 8 modes
(docs/images/toy2d_ring_final.png).

The grid variant trains for 16000 steps (the ring keeps 5000); it is the base of the
mode-collapse study (gan_jax/study.py), where NS + R1 (gamma 0.01, preset 'ns_r1_sharp') covers
25/25 modes with >= 92 % high-quality samples in each of seeds 0..4 (one CPU core, 271-281 s for
all five seeds at once). `launch.py --config=experiments/toy2d.py:grid,r1` alone: 58 s on 2
cores, 25/25 modes, 91.6 % of 2500 EMA-G points within 3 sigma
(docs/images/toy2d_grid_r1_final.png).
"""

from gan_jax import config_base


def get_config(variant: str = ''):
  c = config_base.base_config()
  c.name = 'toy2d'
  c.data.source = 'toy2d'
  c.data.name = 'ring'           # ring (8 modes) | grid (5x5)
  c.model.name = 'mlp'
  c.model.latent_dim = 2
  c.model.g_hidden = (128, 128, 128)
  c.model.g_tanh = False
  c.model.d_hidden = (128, 128, 128)
  c.model.d_pieces = 1
  c.model.d_input_dropout = 0.0
  c.model.d_dropout = 0.0
  c.batch_size = 256
  c.optim.g_lr = 1e-3
  c.optim.d_lr = 1e-3
  c.optim.b1 = 0.5
  c.num_steps = 5000
  c.log_every = 100
  c.eval_every = 1000
  c.checkpoint_every = 1000
  c.num_grid = 2000              # generated points per scatter plot
  variants = variant.split(',') if variant else []
  for v in variants:
    if v in ('ring', 'grid'):
      c.data.name = v
    elif v == 'r1':  # the study's 'ns_r1_sharp': 25/25 grid modes in 5 of 5 seeds
      c.penalty, c.penalty_weight = 'r1', 0.01
    elif v != 'smoke':
      raise ValueError(f'unknown variant {v!r} of experiments/toy2d.py; valid: ring, grid, r1, '
                       'smoke')
  if c.data.name == 'grid':
    # 25 modes of std 0.05 need ~3x the ring's steps: with NS + R1 (gamma 0.01) 12000 steps
    # leave ~9 % of the points on bridges between modes, 16000 bring that to ~6 %.
    c.num_steps = 16000
  if 'smoke' in variants:  # last, whatever the order of the variants
    config_base.smoke(c)
    c.num_grid = 500
  return c
