"""The MLP GAN told a label ('mlp_concat_proj'): concat G, projection D, and a train step.

Small widths keep it fast; the paper's widths are the same code (tests/test_models.py).
"""

import functools

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import models, steps
from gan_jax.models import mlp
from gan_jax.state import GANState, ModelState

K = 6
LATENT = 8
WIDTHS = dict(g_hidden=(32, 32), d_hidden=(16, 16), d_pieces=3)


def _nets(**kw):
  mc = ml_collections.ConfigDict({'name': 'mlp_concat_proj', **WIDTHS, **kw})
  return models.build_models(mc, (28, 28, 1), num_classes=K)


def _params(module, *args, seed=0):
  """Params drawn with numpy at scale 0.1 from the shapes ``init`` makes (no zero tables)."""
  rs = np.random.RandomState(seed)
  shapes = jax.eval_shape(functools.partial(module.init, train=False), jax.random.key(0), *args)
  return jax.tree.map(lambda s: jnp.asarray(0.1 * rs.normal(size=s.shape), s.dtype), shapes)


def _images(seed, n):
  return jnp.asarray(np.random.RandomState(seed).uniform(-1, 1, (n, 28, 28, 1)), jnp.float32)


def test_registry_builds_the_conditional_mlp_pair_with_the_data_classes():
  g, d = _nets()
  assert isinstance(g, mlp.ConcatGenerator) and isinstance(d, mlp.ProjectionDiscriminator)
  assert g.num_classes == d.num_classes == K
  assert 'mlp_concat_proj' in models.CONDITIONAL_MODELS
  assert 'mlp_concat_proj' in models.MATMUL_DTYPE_MODELS


def test_projection_logit_is_the_plain_logit_plus_the_embedding_inner_product():
  _, d = _nets()
  x = _images(1, 5)
  y = jnp.array([0, 3, 5, 3, 1])
  v = _params(d, x)
  apply = jax.jit(functools.partial(d.apply, train=False, return_features=True))
  logits, h = apply(v, x, y)
  chex.assert_shape(h, (5, 16))
  e = np.asarray(v['params']['embed']['kernel'])  # [K, 16]: row k is embed(k)
  plain = mlp.Discriminator(hidden=(16, 16), pieces=3)
  plain_params = {'params': {k: p for k, p in v['params'].items() if k != 'embed'}}
  plain_logits, plain_h = plain.apply(plain_params, x, train=False, return_features=True)
  np.testing.assert_allclose(h, plain_h, atol=0)
  hn = np.asarray(h, np.float64)
  np.testing.assert_allclose(logits, np.asarray(plain_logits) + np.sum(e[np.asarray(y)] * hn, 1),
                             rtol=1e-5, atol=1e-5)
  # Another label moves the logit by the difference of the two rows of E, and nothing else.
  other = (y + 1) % K
  np.testing.assert_allclose(apply(v, x, other)[0] - logits,
                             np.sum((e[np.asarray(other)] - e[np.asarray(y)]) * hn, 1),
                             rtol=1e-4, atol=1e-5)
  with pytest.raises(ValueError, match=r'class-conditional \(num_classes=6\): pass labels'):
    d.apply(v, x, train=False)


def test_concat_generator_is_the_plain_generator_on_z_and_the_one_hot_label():
  g, _ = _nets()
  z = jnp.asarray(np.random.RandomState(0).normal(size=(4, LATENT)), jnp.float32)
  y = jnp.array([2, 5, 5, 0])
  v = _params(g, z)
  chex.assert_shape(v['params']['net']['Dense_0']['kernel'], (LATENT + K, 32))
  x = g.apply(v, z, y, train=False)
  chex.assert_shape(x, (4, 28, 28, 1))
  plain = mlp.Generator(hidden=(32, 32))
  want = plain.apply({'params': v['params']['net']},
                     jnp.concatenate([z, jax.nn.one_hot(y, K)], axis=1), train=False)
  np.testing.assert_allclose(x, want, atol=1e-6)
  assert np.all(np.max(np.abs(np.asarray(g.apply(v, z, (y + 1) % K)) - np.asarray(x)),
                       axis=(1, 2, 3)) > 1e-4)
  with pytest.raises(ValueError, match=r'labels have shape \(3,\); expected \(4,\)'):
    g.apply(v, z, y[:3])


def test_train_step_with_cluster_labels_updates_g_and_the_embedding():
  g, d = _nets()
  gp = _params(g, jnp.zeros((2, LATENT)))
  dp = _params(d, jnp.zeros((2, 28, 28, 1)), seed=1)
  gs = ModelState.create(apply_fn=g.apply, params=gp['params'], tx=optax.adam(1e-3, 0.0))
  ds = ModelState.create(apply_fn=d.apply, params=dp['params'], tx=optax.adam(1e-3, 0.0))
  state = GANState(g=gs, d=ds, ema_params=jax.tree.map(jnp.copy, gs.params))
  # Unequal cluster shares, as with config.data.clusters; one G forward per step.
  probs = (0.5, 0.1, 0.1, 0.1, 0.1, 0.1)
  cfg = steps.StepConfig(latent_dim=LATENT, num_classes=K, ema_decay=0.9, share_g_forward=True,
                         label_probs=probs)
  reals, labels = _images(2, 8)[None], (jnp.arange(8, dtype=jnp.int32) % K)[None]
  f = jax.jit(functools.partial(steps.train_step, cfg=cfg))
  new, metrics = f(state, reals, jax.random.key(3), labels=labels)
  changed = lambda a, b: [bool(jnp.any(u != v)) for u, v in zip(jax.tree.leaves(a),
                                                               jax.tree.leaves(b))]
  assert all(changed(new.g.params, state.g.params))
  assert all(changed(new.d.params, state.d.params))  # the embedding E included
  assert np.isfinite(float(metrics['loss_D'])) and np.isfinite(float(metrics['loss_G']))
  # The real labels reach D: other labels for the same images give another D update.
  other, _ = f(state, reals, jax.random.key(3), labels=(labels + 1) % K)
  assert any(changed(other.d.params, new.d.params))
