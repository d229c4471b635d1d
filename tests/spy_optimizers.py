"""Optimizers for spy tests: they move nothing and keep the gradients they were given."""

import jax
import jax.numpy as jnp
import optax


def last_gradient() -> optax.GradientTransformation:
  """Keeps the last gradient (``state['grads']``) and updates nothing."""
  def init(params):
    return {'grads': jax.tree.map(jnp.zeros_like, params)}

  def update(grads, state, params=None):
    del state, params
    return jax.tree.map(jnp.zeros_like, grads), {'grads': grads}

  return optax.GradientTransformation(init, update)
