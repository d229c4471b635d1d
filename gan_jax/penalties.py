"""Discriminator regularisers as pure functions of a critic closure.

``d_fn`` maps a batch ``x [B, ...]`` to critic outputs ``[B]`` (or ``[B, 1]``); the trainer builds
it as a closure over D's params, so differentiating a penalty w.r.t. those params (through
``jax.grad`` of the D loss) differentiates through the input gradient below (double backprop).
Every penalty returns a float32 scalar to *add* to the D loss.

Per-sample input gradients come from one backward pass,
``jax.grad(lambda x: jnp.sum(d_fn(x)))(x)``: row i of that gradient is dD(x_i)/dx_i as long as
``d_fn`` treats samples independently. A D that mixes samples (BatchNorm in training mode,
minibatch discrimination) breaks this; call such a D in inference mode inside ``d_fn``.

``PENALTIES`` maps config names to callables with one signature,
``fn(d_fn, real, fake, key, weight) -> scalar``, the weighted term to add to the D loss;
``get_penalty`` looks one up. ``clip_weights`` (the original WGAN's Lipschitz constraint) acts on
params rather than on the loss, and ``apply_lazily`` implements lazy regularisation.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError

# Added to the squared gradient norm before the square root. d sqrt(s)/ds is infinite at s = 0
# (a critic that is flat at a sample), which would turn the double-backprop gradient into NaN;
# 1e-12 is far below float32 resolution of any norm that matters (it changes a norm of 1 by
# 5e-13, under half an ulp), so the penalty's value is unchanged in practice.
_SQRT_EPS = 1e-12

PenaltyFn = Callable[..., jax.Array]


def _grad_sq_norms(d_fn, x):
  """Per-sample squared L2 norm of dD(x_i)/dx_i over all non-batch axes, float32 ``[B]``."""
  grads = jax.grad(lambda inp: jnp.sum(jnp.asarray(d_fn(inp), jnp.float32)))(x)
  grads = jnp.asarray(grads, jnp.float32).reshape(x.shape[0], -1)
  return jnp.sum(jnp.square(grads), axis=1)


def _grad_norms(d_fn, x):
  """Per-sample L2 norm of the input gradient; see ``_SQRT_EPS`` for the epsilon."""
  return jnp.sqrt(_grad_sq_norms(d_fn, x) + _SQRT_EPS)


def _batch_uniform(key, x):
  """One U[0, 1) draw per sample, shaped ``[B, 1, ..., 1]`` to broadcast over x's features."""
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), dtype=jnp.float32)


def gradient_penalty(d_fn, real, fake, key, target=1.0, one_sided=False):
  """WGAN-GP gradient penalty (Gulrajani et al., 2017, "Improved Training of Wasserstein GANs"):

    E_x̂[(||∇D(x̂)||_2 - target)^2],  x̂ = ε x + (1 - ε) x̃,  ε ~ U[0, 1] per sample,

  where x is real and x̃ fake. The optimal 1-Lipschitz critic has unit gradient norm almost
  everywhere on lines between coupled real and fake points, hence the two-sided target of 1.
  With ``one_sided=True`` only norms above the target are penalised,
  E[max(0, ||∇D(x̂)|| - target)^2] (Petzka et al., 2018, "On the regularization of Wasserstein
  GANs"), which enforces the Lipschitz bound without also pushing small gradients up.

  Not multiplied by λ (the paper uses λ = 10); the ``PENALTIES`` entries take it as ``weight``.

  Args:
    d_fn: ``x [B, ...] -> critic outputs [B]``.
    real: real batch ``[B, ...]``.
    fake: fake batch, same shape. The trainer should pass it with gradients to G stopped.
    key: PRNG key for ε.
    target: the gradient norm the penalty pulls towards (K of a K-Lipschitz constraint).
    one_sided: penalise only norms above ``target``.

  Returns:
    The float32 scalar penalty (unweighted).
  """
  eps = _batch_uniform(key, real).astype(real.dtype)
  x_hat = eps * real + (1 - eps) * fake
  excess = _grad_norms(d_fn, x_hat) - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(jnp.square(excess))


def r1(d_fn, real, gamma):
  """R1 regulariser (Mescheder et al., 2018, "Which Training Methods for GANs do actually
  Converge?", eq. 9):

    γ/2 · E_x~p_data[||∇D(x)||_2^2].

  Penalises D's gradient on real data only, so at the equilibrium p_g = p_data (where D can be
  constant) it vanishes and does not move the fixed point. No square root, hence no epsilon.
  """
  return 0.5 * gamma * jnp.mean(_grad_sq_norms(d_fn, real))


def r2(d_fn, fake, gamma):
  """R2 regulariser (Mescheder et al., 2018, eq. 10): γ/2 · E_z[||∇D(G(z))||_2^2], the R1
  penalty evaluated on fake samples."""
  return 0.5 * gamma * jnp.mean(_grad_sq_norms(d_fn, fake))


def dragan(d_fn, real, key, c=0.5, target=1.0):
  """DRAGAN penalty (Kodali et al., 2017, "On Convergence and Stability of GANs"):

    E_x[(||∇D(x_p)||_2 - target)^2],  x_p = x + c · std(x) · u,  u ~ U[0, 1) of x's shape.

  The penalty acts in a neighbourhood of the real data, where the authors locate the sharp
  gradients of D that accompany mode collapse. ``std(x)`` is the standard deviation of the whole
  real batch (one scalar over batch and feature axes), as in the authors' reference code: a
  per-feature std would leave features that are constant across the batch (e.g. MNIST's black
  border) unperturbed. The noise is one-sided (u ≥ 0), also as in that code.

  Not multiplied by λ (the paper uses λ = 10); the ``PENALTIES`` entries take it as ``weight``.
  """
  x32 = jnp.asarray(real, jnp.float32)
  u = jax.random.uniform(key, real.shape, dtype=jnp.float32)
  x_p = (x32 + c * jnp.std(x32) * u).astype(real.dtype)
  return jnp.mean(jnp.square(_grad_norms(d_fn, x_p) - target))


def clip_weights(params, c):
  """WGAN weight clipping (Arjovsky et al., 2017, alg. 1): every leaf clipped to [-c, c].

  Bounds the critic's Lipschitz constant by a (loose, architecture-dependent) constant; the
  paper uses c = 0.01. Apply to D's params after each critic update. Pure: returns new params.
  """
  return jax.tree.map(lambda p: jnp.clip(p, -c, c), params)


def apply_lazily(penalty_value, step, every):
  """Lazy regularisation (Karras et al., 2020, "Analyzing and Improving the Image Quality of
  StyleGAN", "lazy regularization"):

    every · penalty   if step % every == 0,   else 0.

  Applying the penalty on one step in ``every`` and scaling it by ``every`` keeps its expected
  gradient per step unchanged. ``jnp.where`` still evaluates the penalty on every step, so this
  keeps the objective right but saves no compute; to skip the double backprop, branch on
  ``step % every == 0`` outside the jitted step or with ``jax.lax.cond``, and still multiply by
  ``every``.

  Args:
    penalty_value: the penalty at this step (scalar).
    step: the step counter (int or int array).
    every: apply every ``every`` steps; ``1`` applies it on every step, unscaled.
  """
  if every < 1:
    raise ValueError(f'lazy regularisation interval must be >= 1, got every={every}')
  penalty_value = jnp.asarray(penalty_value, jnp.float32)
  return jnp.where(step % every == 0, every * penalty_value, jnp.zeros_like(penalty_value))


# Registry. Uniform signature (d_fn, real, fake, key, weight) -> the weighted term to add to the
# D loss. ``weight`` is λ for the gradient-norm penalties (the papers use 10) and γ for R1/R2
# (whose γ/2 factor stays inside, as in Mescheder et al.).
def _none(d_fn, real, fake, key, weight):
  del d_fn, real, fake, key, weight
  return jnp.zeros((), jnp.float32)


def _gp(d_fn, real, fake, key, weight):
  return weight * gradient_penalty(d_fn, real, fake, key)


def _gp_one_sided(d_fn, real, fake, key, weight):
  return weight * gradient_penalty(d_fn, real, fake, key, one_sided=True)


def _r1(d_fn, real, fake, key, weight):
  del fake, key
  return r1(d_fn, real, weight)


def _r2(d_fn, real, fake, key, weight):
  del real, key
  return r2(d_fn, fake, weight)


def _dragan(d_fn, real, fake, key, weight):
  del fake
  return weight * dragan(d_fn, real, key)


PENALTIES = {
    'none': _none,
    'gp': _gp,
    'gp_one_sided': _gp_one_sided,
    'r1': _r1,
    'r2': _r2,
    'dragan': _dragan,
}


def get_penalty(name: str) -> PenaltyFn:
  """The penalty called ``name``; a ConfigError lists the valid names."""
  try:
    return PENALTIES[name]
  except KeyError:
    raise ConfigError(
        f'config.penalty={name!r} is not a known penalty; valid: {", ".join(sorted(PENALTIES))}'
    ) from None
