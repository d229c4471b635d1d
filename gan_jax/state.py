"""GANState: the pair of TrainStates (G and D), their BatchNorm statistics and the EMA of G."""

from typing import Any, Optional

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state



class ModelState(train_state.TrainState):
  """A flax TrainState that also carries the BatchNorm running statistics (``{}`` if none)."""
  batch_stats: Any = flax.struct.field(default_factory=dict)


@flax.struct.dataclass
class GANState:
  """Everything a run needs to continue bit for bit.

  Attributes:
    g, d: generator and discriminator TrainStates (params, optimizer state, BN stats, own step).
      ``d.step`` counts D updates (``n_critic`` per train step), ``g.step`` counts train steps.
    ema_params: exponential moving average of ``g.params`` or ``None`` when EMA is off.
  """
  g: ModelState
  d: ModelState
  ema_params: Optional[Any] = None

  @property
  def step(self):
    """Completed train steps (= G updates)."""
    return self.g.step


SCHEDULES = ('constant', 'linear', 'cosine')


def make_optimizer(optim: ml_collections.ConfigDict, net: str,
                   total_updates: int = 0) -> optax.GradientTransformation:
  """Adam for ``net`` in {'g', 'd'} with its own learning rate (TTUR: Heusel et al., 2017) and
  an optax schedule over ``total_updates`` of that net (D makes ``n_critic`` per train step):

    lr(t) = lr * t / warmup                        t < warmup        (optim.warmup_steps)
          = lr                                     t < hold          (optim.decay_start of the run)
          = decay(t - hold) from lr to 0           after: linear, or cosine, over the rest

  ``decay_start`` 0 decays from the end of the warm-up (or the start). Values are validated by
  ``config_base.validate_config``."""
  lr = optim[f'{net}_lr']
  kind = optim.get('schedule', 'constant')
  warmup = optim.get('warmup_steps', 0)
  if kind == 'constant' and not warmup:
    return optax.adam(lr, b1=optim.b1, b2=optim.b2)  # no schedule state in the checkpoint
  hold = max(warmup, int(round(optim.get('decay_start', 0.0) * total_updates)))
  decay = max(total_updates - hold, 1)
  if kind == 'linear':
    tail = optax.linear_schedule(lr, 0.0, decay)
  elif kind == 'cosine':
    tail = optax.cosine_decay_schedule(lr, decay)
  else:
    tail = optax.constant_schedule(lr)
  parts, bounds = [], []
  if warmup:
    parts.append(optax.linear_schedule(0.0, lr, warmup))
    bounds.append(warmup)
  if hold > warmup:
    parts.append(optax.constant_schedule(lr))
    bounds.append(hold)
  schedule = optax.join_schedules(parts + [tail], bounds) if parts else tail
  return optax.adam(schedule, b1=optim.b1, b2=optim.b2)


def create_state(g_model: nn.Module, d_model: nn.Module, g_tx: optax.GradientTransformation,
                 d_tx: optax.GradientTransformation, latent_dim: int, data_shape, key: jax.Array,
                 ema: bool = False) -> GANState:
  """Initialises both nets (on a batch of 2) and their optimizers. Pure; use under ``jax.jit``
  or ``jax.eval_shape`` to get the abstract state for a checkpoint restore."""
  kg, kd, kdrop = jax.random.split(key, 3)
  g_vars = g_model.init({'params': kg}, jnp.zeros((2, latent_dim)), train=False)
  d_vars = d_model.init({'params': kd, 'dropout': kdrop}, jnp.zeros((2,) + tuple(data_shape)),
                        train=False)
  g = ModelState.create(apply_fn=g_model.apply, params=g_vars['params'], tx=g_tx,
                        batch_stats=g_vars.get('batch_stats', {}))
  d = ModelState.create(apply_fn=d_model.apply, params=d_vars['params'], tx=d_tx,
                        batch_stats=d_vars.get('batch_stats', {}))
  # Array steps (not Python ints) so every leaf is an array: same pytree before and after a
  # step, checkpointed like any other leaf.
  g, d = g.replace(step=jnp.zeros((), jnp.int32)), d.replace(step=jnp.zeros((), jnp.int32))
  ema_params = jax.tree.map(jnp.copy, g.params) if ema else None
  return GANState(g=g, d=d, ema_params=ema_params)
