"""GAN objectives as pure functions of discriminator logits.

Every loss takes the D logits on a real batch and on a fake batch (shape ``[B]`` or ``[B, 1]``,
any float dtype; computed in float32) and returns a scalar to *minimise*. Writing them on logits
with ``log_sigmoid`` keeps them finite where ``log(sigmoid(x))`` would underflow.

Notation: ``D(x) = sigmoid(l(x))`` with ``l`` the logit; ``log D = log_sigmoid(l)`` and
``log(1 - D) = log_sigmoid(-l)``.

An objective is a ``GANLoss(d, g)`` pair; ``LOSSES`` maps config names to objectives. The
generator loss has the same signature as the discriminator loss so that objectives that compare
real and fake logits (relativistic GANs) fit the same interface.

Objectives beyond the original GAN (LSGAN, WGAN, hinge) read the D output as a raw critic value
rather than a logit; the "logits" arguments are then simply the critic outputs.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError

LossFn = Callable[[jax.Array, jax.Array], jax.Array]


def _f32(x):
  return jnp.asarray(x, jnp.float32).reshape(-1)


def value(real_logits, fake_logits):
  """The minimax value V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]  (Goodfellow et al., 2014).

  D maximises V and G minimises it. For the optimal D*, V(D*, G) = -log 4 + 2 JSD(p_data || p_g),
  so at p_g = p_data the value is -log 4 ≈ -1.386 (D* = 1/2 everywhere).
  """
  return jnp.mean(jax.nn.log_sigmoid(_f32(real_logits))) + jnp.mean(
      jax.nn.log_sigmoid(-_f32(fake_logits)))


def minimax_d_loss(real_logits, fake_logits):
  """D loss of the minimax game: -V(D, G) = -E[log D(x)] - E[log(1 - D(G(z)))].

  This is binary cross-entropy with label 1 on real and 0 on fake (Goodfellow et al., 2014, eq. 1).
  Its minimiser for fixed G is D*(x) = p_data(x) / (p_data(x) + p_g(x)).
  """
  return -value(real_logits, fake_logits)


def minimax_g_loss(real_logits, fake_logits):
  """Saturating G loss, exactly the paper's: E_z[log(1 - D(G(z)))], minimised by G.

  d/dl log(1 - sigmoid(l)) = -sigmoid(l) = -D(G(z)): when D confidently rejects fakes
  (D(G(z)) -> 0) the gradient vanishes, which is why it saturates early in training
  (Goodfellow et al., 2014, section 3). ``real_logits`` is unused.
  """
  del real_logits
  return jnp.mean(jax.nn.log_sigmoid(-_f32(fake_logits)))


def ns_g_loss(real_logits, fake_logits):
  """Non-saturating G loss: -E_z[log D(G(z))]  (Goodfellow et al., 2014, section 3).

  Same fixed point as the minimax loss, but d/dl[-log sigmoid(l)] = -(1 - D(G(z))) -> -1 as
  D(G(z)) -> 0, so G keeps a strong gradient exactly when it is losing. ``real_logits`` is unused.
  """
  del real_logits
  return -jnp.mean(jax.nn.log_sigmoid(_f32(fake_logits)))


def lsgan_d_loss(real_logits, fake_logits):
  """Least-squares D loss: 1/2 E_x[(D(x) - 1)^2] + 1/2 E_z[D(G(z))^2]  (Mao et al., 2017).

  The a=0 (fake), b=1 (real), c=1 (G's target) coding of "Least Squares Generative Adversarial
  Networks", eq. 2. ``D`` is the raw critic output (no sigmoid): the quadratic penalises fakes by
  their distance to the decision value even when they are on the right side of it, which is what
  keeps G's gradient from vanishing.
  """
  real, fake = _f32(real_logits), _f32(fake_logits)
  return 0.5 * jnp.mean(jnp.square(real - 1.0)) + 0.5 * jnp.mean(jnp.square(fake))


def lsgan_g_loss(real_logits, fake_logits):
  """Least-squares G loss: 1/2 E_z[(D(G(z)) - 1)^2]  (Mao et al., 2017, eq. 2 with c=1).

  ``real_logits`` is unused.
  """
  del real_logits
  return 0.5 * jnp.mean(jnp.square(_f32(fake_logits) - 1.0))


def wgan_d_loss(real_logits, fake_logits):
  """Wasserstein critic loss: E_z[D(G(z))] - E_x[D(x)]  (Arjovsky et al., 2017, alg. 1).

  Minimising it maximises E_x[D(x)] - E_z[D(G(z))], which over 1-Lipschitz critics is the
  Kantorovich-Rubinstein dual of W_1(p_data, p_g). The loss alone is unbounded below: the
  Lipschitz constraint comes from weight clipping (``penalties.clip_weights``, the original
  WGAN) or from the gradient penalty (``penalties.gradient_penalty``, WGAN-GP; Gulrajani et al.,
  2017), both applied by the trainer. ``D`` is the raw critic output.
  """
  return jnp.mean(_f32(fake_logits)) - jnp.mean(_f32(real_logits))


def wgan_g_loss(real_logits, fake_logits):
  """Wasserstein G loss: -E_z[D(G(z))]  (Arjovsky et al., 2017, alg. 1).

  The E_x[D(x)] term of the critic objective does not depend on G, so it is dropped.
  Also the G loss of the hinge objective (Lim & Ye, 2017; Miyato et al., 2018).
  ``real_logits`` is unused.
  """
  del real_logits
  return -jnp.mean(_f32(fake_logits))


def hinge_d_loss(real_logits, fake_logits):
  """Hinge D loss: E_x[relu(1 - D(x))] + E_z[relu(1 + D(G(z)))].

  Lim & Ye, 2017 ("Geometric GAN"); the form used by Miyato et al., 2018 (SN-GAN) and BigGAN.
  D is only pushed until real outputs exceed +1 and fake ones fall below -1 (a margin, as in an
  SVM), so a confident D stops growing its outputs. The G loss is ``wgan_g_loss``.
  """
  real, fake = _f32(real_logits), _f32(fake_logits)
  return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))


def _paired(real_logits, fake_logits):
  real, fake = _f32(real_logits), _f32(fake_logits)
  if real.shape != fake.shape:
    # Pairing x_i with G(z_i) is only defined for equal batches; broadcasting a [1] against a
    # [B] would silently compute a different objective.
    raise ValueError(f'relativistic pairwise loss needs equal real and fake batches, got '
                     f'{real.shape[0]} real and {fake.shape[0]} fake logits')
  return real, fake


def rsgan_d_loss(real_logits, fake_logits):
  """Relativistic standard D loss: -E_(x,z)[log sigmoid(C(x) - C(G(z)))].

  Jolicoeur-Martineau, 2018 ("The relativistic discriminator: a key element missing from
  standard GAN"). ``C`` is the critic output before the sigmoid. The expectation over
  pairs is estimated with the pairs (x_i, G(z_i)) of the batch, i.e. the mean over i of
  ``log_sigmoid(real[i] - fake[i])``; real and fake batches must have the same size.
  """
  real, fake = _paired(real_logits, fake_logits)
  return -jnp.mean(jax.nn.log_sigmoid(real - fake))


def rsgan_g_loss(real_logits, fake_logits):
  """Relativistic standard G loss: -E_(x,z)[log sigmoid(C(G(z)) - C(x))].

  Jolicoeur-Martineau, 2018: the D loss with the roles of real and fake swapped, so G
  also gets a gradient through the real logits' place in the comparison. Needs ``real_logits``.
  """
  real, fake = _paired(real_logits, fake_logits)
  return -jnp.mean(jax.nn.log_sigmoid(fake - real))


def _ragan(a_logits, b_logits):
  # -E_a[log sigmoid(C(a) - E_b C(b))] - E_b[log(1 - sigmoid(C(b) - E_a C(a)))], with
  # log(1 - sigmoid(t)) = log_sigmoid(-t) so that neither term underflows to log(0).
  a, b = _f32(a_logits), _f32(b_logits)
  return (-jnp.mean(jax.nn.log_sigmoid(a - jnp.mean(b))) -
          jnp.mean(jax.nn.log_sigmoid(jnp.mean(a) - b)))


def ragan_d_loss(real_logits, fake_logits):
  """Relativistic average D loss (Jolicoeur-Martineau, 2018, RaSGAN):

    -E_x[log sigmoid(C(x) - E_z C(G(z)))] - E_z[log(1 - sigmoid(C(G(z)) - E_x C(x)))].

  D estimates the probability that real data is more realistic than the *average* fake (and
  vice versa). The averages are over the batch passed in; real and fake batches may differ in
  size.
  """
  return _ragan(real_logits, fake_logits)


def ragan_g_loss(real_logits, fake_logits):
  """Relativistic average G loss: the D loss with real and fake swapped (Jolicoeur-Martineau,
  2018):

    -E_z[log sigmoid(C(G(z)) - E_x C(x))] - E_x[log(1 - sigmoid(C(x) - E_z C(G(z))))].

  Needs ``real_logits``.
  """
  return _ragan(fake_logits, real_logits)


class GANLoss(NamedTuple):
  """An objective: ``d(real_logits, fake_logits)`` and ``g(real_logits, fake_logits)``.

  ``g_uses_real`` says whether ``g`` reads the real logits (relativistic objectives); when it is
  False the G step skips the D pass on real data and passes ``real_logits=None``.
  """
  d: LossFn
  g: LossFn
  g_uses_real: bool = False


# One explicit mapping from config name to objective.
LOSSES = {
    'minimax': GANLoss(d=minimax_d_loss, g=minimax_g_loss),
    'ns': GANLoss(d=minimax_d_loss, g=ns_g_loss),
    'lsgan': GANLoss(d=lsgan_d_loss, g=lsgan_g_loss),
    'wgan': GANLoss(d=wgan_d_loss, g=wgan_g_loss),
    # Same losses as 'wgan'; a separate name so that choosing it implies the gradient penalty
    # (PENALTY_FOR_LOSS) instead of weight clipping.
    'wgan_gp': GANLoss(d=wgan_d_loss, g=wgan_g_loss),
    'hinge': GANLoss(d=hinge_d_loss, g=wgan_g_loss),
    'rsgan': GANLoss(d=rsgan_d_loss, g=rsgan_g_loss, g_uses_real=True),
    'ragan': GANLoss(d=ragan_d_loss, g=ragan_g_loss, g_uses_real=True),
}

# The D penalty (a name in ``penalties.PENALTIES``) that an objective implies when the config does
# not choose one: WGAN-GP *is* the WGAN losses plus the gradient penalty (Gulrajani et al., 2017).
# Objectives not listed imply no penalty. An explicit penalty in the config takes precedence.
PENALTY_FOR_LOSS = {'wgan_gp': 'gp'}


def get_loss(name: str) -> GANLoss:
  """The objective called ``name``; a ConfigError lists the valid names."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ConfigError(
        f'config.loss={name!r} is not a known objective; valid: {", ".join(sorted(LOSSES))}'
    ) from None
