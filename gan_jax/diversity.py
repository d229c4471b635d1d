"""The mode-seeking regulariser of G (Mao et al., 2019, "Mode Seeking Generative Adversarial
Networks for Diverse Image Synthesis").

A conditional G can learn to ignore much of z: for one label it then draws a narrow set of
images, and the samples miss the spread of the data within each label (low recall). The
regulariser pairs fakes made for the *same* label from different latents and rewards G for
images that differ as much as their latents do:

    ratio = mean_i |G(z_i, y_i) - G(z'_i, y_i)|_1 / mean_i |z_i - z'_i|_1
    L_ms  = 1 / (ratio + eps)              (added to G's loss with weight lambda)

The means run over the pairs and over the pixels (latent entries). A batch of B fakes holds the
pairs ``(i, i + B // 2)``, i < B // 2; the step draws the labels of the second half equal to the
first (``gan_jax.draws.fake_labels``) so that each pair shares its label. With an odd B the last
fake is in no pair. ``config.mode_seeking`` is lambda (0 = off).

Measured here (benchmarks/README.md, fifteenth session): at lambda = 1 on the MNIST default it
wrecked the run (FD5k 229 at step 1000 with SN in D, 58 without; the default: 31 and 22). While
G's outputs are still alike the ratio is small and 1 / ratio has a steep gradient; try small
weights, or a warm-up, before relying on it.
"""

import jax.numpy as jnp

EPS = 1e-5


def pairs(x):
  """The two halves ``(x[:h], x[h:2h])``, h = len(x) // 2, whose rows i form the pairs."""
  h = x.shape[0] // 2
  return x[:h], x[h:2 * h]


def ratio(fake, z):
  """mean |G(z_i) - G(z'_i)| / mean |z_i - z'_i| over the pairs of the batch (float32)."""
  f1, f2 = pairs(jnp.asarray(fake, jnp.float32))
  z1, z2 = pairs(jnp.asarray(z, jnp.float32))
  return jnp.mean(jnp.abs(f1 - f2)) / jnp.mean(jnp.abs(z1 - z2))


def mode_seeking_loss(fake, z, eps: float = EPS):
  """``1 / (ratio(fake, z) + eps)``: minimised by G, so its images spread as its latents do."""
  return 1.0 / (ratio(fake, z) + eps)
