"""What a train step draws from its key: latents, the labels of conditional fakes, instance noise.

Each draw is a pure function of a key, so a step that splits its key the same way draws the
same batch; under pmap (``axis_name`` set) every device draws the global batch and keeps its own
slice, so a run does not depend on the number of devices.
"""

from typing import Optional

import jax
import jax.numpy as jnp

def sample_latents(key, batch_size: int, latent_dim: int, axis_name: Optional[str] = None):
  """z ~ N(0, I), ``[batch_size, latent_dim]``.

  Under pmap (``axis_name`` set) ``batch_size`` is the per-device batch: every device draws the
  same global batch from the same key and keeps its own slice, so the run does not depend on the
  number of devices.
  """
  if axis_name is None:
    return jax.random.normal(key, (batch_size, latent_dim))
  n = jax.lax.psum(1, axis_name)
  z = jax.random.normal(key, (n * batch_size, latent_dim))
  return jax.lax.dynamic_slice_in_dim(z, jax.lax.axis_index(axis_name) * batch_size, batch_size)


# fold_in tag of the key that fake labels are drawn from: a separate stream, so adding labels
# leaves every other draw of a step (latents, noise, dropout) as it is.
LABEL_TAG = 0x1abe1


def sample_labels(key, batch_size: int, num_classes: int, axis_name: Optional[str] = None,
                  probs=()):
  """y ~ Uniform{0, ..., num_classes - 1}, or ~ ``probs`` when given, int32 ``[batch_size]``.

  Under pmap ``batch_size`` is the per-device batch; as in ``sample_latents`` every device draws
  the global batch and keeps its slice.
  """
  n = 1 if axis_name is None else jax.lax.psum(1, axis_name)
  if probs:
    logits = jnp.log(jnp.asarray(probs, jnp.float32))
    y = jax.random.categorical(key, logits, shape=(n * batch_size,)).astype(jnp.int32)
  else:
    y = jax.random.randint(key, (n * batch_size,), 0, num_classes, jnp.int32)
  if axis_name is None:
    return y
  return jax.lax.dynamic_slice_in_dim(y, jax.lax.axis_index(axis_name) * batch_size, batch_size)


def fake_labels(rng, batch_size: int, cfg):
  """The labels a step with key ``rng`` makes its fakes for (None when unconditional). With the
  mode-seeking regulariser (``cfg.mode_seeking`` > 0) fake ``i + B // 2`` gets fake ``i``'s
  label, so the pairs of ``gan_jax.diversity`` share their labels."""
  if not cfg.num_classes:
    return None
  y = sample_labels(jax.random.fold_in(rng, LABEL_TAG), batch_size, cfg.num_classes,
                    cfg.axis_name, cfg.label_probs)
  if cfg.mode_seeking > 0:
    h = batch_size // 2
    y = jnp.concatenate([y[:h], y[:h], y[2 * h:]])
  return y


def noise_std(cfg, step):
  """Instance-noise std at train step ``step``: linear decay from ``cfg.instance_noise`` to 0."""
  if cfg.instance_noise <= 0:
    return 0.0
  if cfg.instance_noise_steps <= 0:
    return cfg.instance_noise
  frac = jnp.clip(1.0 - step.astype(jnp.float32) / cfg.instance_noise_steps, 0.0, 1.0)
  return cfg.instance_noise * frac


def add_noise(x, std, key):
  """``x + std * N(0, I)``; ``x`` itself when ``std`` is the float 0."""
  if isinstance(std, float) and std == 0.0:
    return x
  return x + std * jax.random.normal(key, x.shape, x.dtype)
