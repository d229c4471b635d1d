"""Device mesh and shardings: one code path from one CPU to many hosts.

The batch is sharded along the mesh axis ``'data'``; params and optimizer state are replicated.
The train step is one ``jax.jit`` with these shardings, and XLA inserts the cross-device
reductions (gradients, and BatchNorm statistics, which are therefore global-batch statistics).

A ``'model'`` axis for tensor parallelism would be a second mesh dimension
(``Mesh(devices.reshape(d, m), ('data', 'model'))``) with the large kernels' ``PartitionSpec``
naming it; nothing here assumes the mesh is 1-D except ``make_mesh``.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax.errors import ConfigError

DATA = 'data'


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh over all devices of all processes, axis ``'data'``."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """Sharding that splits axis ``batch_axis`` over ``'data'``."""
  return NamedSharding(mesh, P(*([None] * batch_axis + [DATA])))


def check_batch_size(batch_size: int, mesh: Mesh):
  n = mesh.devices.size
  if batch_size % n:
    lo = batch_size - batch_size % n
    raise ConfigError(
        f'config.batch_size={batch_size} is not divisible by the {n} devices; use a multiple of '
        f'{n}, e.g. {lo or n} or {lo + n}')
