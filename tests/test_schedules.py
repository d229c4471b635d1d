"""Learning-rate schedules of ``state.make_optimizer``: warm-up, hold, linear and cosine decay,
read back from the optimizer's own updates (Adam's first step moves each param by ~lr)."""

import math

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import config_base, state
from gan_jax.errors import ConfigError


def _lrs(total, **optim):
  """The learning rate at each of ``total`` updates: a fresh Adam's first update of a
  parameter with gradient 1 is exactly -lr (m / sqrt(v) = 1 after bias correction)."""
  cfg = ml_collections.ConfigDict({'g_lr': 1.0, 'd_lr': 1.0, 'b1': 0.0, 'b2': 0.0,
                                   'schedule': 'constant', 'warmup_steps': 0,
                                   'decay_start': 0.0, **optim})
  tx = state.make_optimizer(cfg, 'g', total)
  params = jnp.zeros(())
  opt = tx.init(params)
  out = []
  for _ in range(total):
    upd, opt = tx.update(jnp.ones(()), opt, params)
    out.append(-float(upd))
  return np.array(out)


def test_constant_and_linear_from_the_start():
  np.testing.assert_allclose(_lrs(10), np.ones(10), rtol=1e-4)
  np.testing.assert_allclose(_lrs(10, schedule='linear'), 1 - np.arange(10) / 10, rtol=1e-4,
                             atol=1e-6)


def test_decay_start_holds_then_decays_to_zero():
  lrs = _lrs(20, schedule='linear', decay_start=0.5)
  np.testing.assert_allclose(lrs[:10], 1.0, rtol=1e-4)
  np.testing.assert_allclose(lrs[10:], 1 - np.arange(10) / 10, rtol=1e-4, atol=1e-6)
  cos = _lrs(20, schedule='cosine', decay_start=0.75)
  np.testing.assert_allclose(cos[:15], 1.0, rtol=1e-4)
  np.testing.assert_allclose(cos[15:], 0.5 * (1 + np.cos(math.pi * np.arange(5) / 5)),
                             rtol=1e-4, atol=1e-6)


def test_warmup_then_hold_then_decay():
  lrs = _lrs(20, schedule='linear', warmup_steps=4, decay_start=0.5)
  np.testing.assert_allclose(lrs[:4], np.arange(4) / 4, atol=1e-6)
  np.testing.assert_allclose(lrs[4:10], 1.0, rtol=1e-4)
  np.testing.assert_allclose(lrs[10:], 1 - np.arange(10) / 10, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('value', [1.0, -0.1, 'half'])
def test_bad_decay_start_is_a_config_error(value):
  c = config_base.base_config()
  c.optim.decay_start = value if not isinstance(value, str) else 0.0
  if isinstance(value, str):
    with pytest.raises(TypeError):
      c.optim.decay_start = value
    return
  with pytest.raises(ConfigError, match=f'config.optim.decay_start={value!r} must lie in'):
    config_base.validate_config(c)
