"""GAN objectives as pure functions of discriminator logits.

Every loss takes the D logits on a real batch and on a fake batch (shape ``[B]`` or ``[B, 1]``,
any float dtype; computed in float32) and returns a scalar to *minimise*. Writing them on logits
with ``log_sigmoid`` keeps them finite where ``log(sigmoid(x))`` would underflow.

Notation: ``D(x) = sigmoid(l(x))`` with ``l`` the logit; ``log D = log_sigmoid(l)`` and
``log(1 - D) = log_sigmoid(-l)``.

An objective is a ``GANLoss(d, g)`` pair; ``LOSSES`` maps config names to objectives. The
generator loss has the same signature as the discriminator loss so that objectives that compare
real and fake logits (relativistic GANs) fit the same interface.
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
}


def get_loss(name: str) -> GANLoss:
  """The objective called ``name``; a ConfigError lists the valid names."""
  try:
    return LOSSES[name]
  except KeyError:
    raise ConfigError(
        f'config.loss={name!r} is not a known objective; valid: {", ".join(sorted(LOSSES))}'
    ) from None
