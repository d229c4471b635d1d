"""Orbax checkpoints of the full GANState under ``<workdir>/checkpoints``."""

import os
from typing import Optional

import jax
import orbax.checkpoint as ocp


class Checkpoints:
  """Saves every ``every`` steps (and on demand), keeps the newest ``keep``, restores the latest.

  Restores go into an abstract target (``jax.eval_shape`` of the state creation, with the
  shardings the state should have now), so a checkpoint saved on one topology restores on another.
  """

  def __init__(self, directory: str, keep: int = 3, every: int = 1000):
    self.directory = os.path.abspath(directory)
    self.every = every
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def all_steps(self):
    return list(self.manager.all_steps())

  def restore(self, abstract_state, step: Optional[int] = None):
    step = self.latest_step() if step is None else step
    return self.manager.restore(step, args=ocp.args.StandardRestore(abstract_state))

  def should_save(self, step: int) -> bool:
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state) -> bool:
    if step in self.manager.all_steps():
      return False
    return self.manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()


def abstract_like(tree, sharding):
  """``jax.ShapeDtypeStruct`` leaves with ``sharding`` (for restoring onto the current devices)."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), tree)
