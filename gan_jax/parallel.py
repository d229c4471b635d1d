"""Device mesh, shardings and multi-process start-up: one code path from one CPU to many hosts.

The batch is sharded along the mesh axis ``'data'``; params and optimizer state are replicated.
The train step is one ``jax.jit`` with these shardings, and XLA inserts the cross-device
reductions (gradients, and BatchNorm statistics, which are therefore global-batch statistics:
results do not depend on the device count).

Multi-host: every process runs the same program (``launch.py`` on each host). ``initialize``
calls ``jax.distributed.initialize`` when the cluster asks for it (SLURM, Open MPI, Cloud TPU
pod slices, or the explicit ``--coordinator_address/--num_processes/--process_id`` flags); after
it, ``jax.devices()`` lists the devices of all processes and ``make_mesh`` spans them.

Adding a ``'model'`` axis (tensor parallelism) later: make the mesh 2-D,
``Mesh(devices.reshape(d, m), ('data', 'model'))``, keep ``batch_sharding`` on ``'data'``, and
give the large kernels a ``PartitionSpec`` naming ``'model'`` (e.g. ``P(None, 'model')`` for a
Dense kernel) instead of ``replicated``; the jitted step stays as it is, XLA inserts the
collectives. Only ``make_mesh`` and the param shardings assume a 1-D mesh today.
"""

import os
from typing import Mapping, Optional

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax.errors import ConfigError, UserError

DATA = 'data'


def make_mesh(num_devices: int = 0) -> Mesh:
  """A 1-D mesh with axis ``'data'`` over all devices of all processes.

  ``num_devices > 0`` takes only the first ``num_devices`` (single-process runs only: a
  multi-process mesh must hold every process's devices).
  """
  devices = jax.devices()
  if num_devices:
    if not 1 <= num_devices <= len(devices):
      raise ConfigError(f'config.num_devices={num_devices} is not available: this job has '
                        f'{len(devices)} devices; use 0 (all) or 1..{len(devices)}')
    if jax.process_count() > 1 and num_devices != len(devices):
      raise ConfigError(f'config.num_devices={num_devices} leaves out devices of a '
                        f'{jax.process_count()}-process job with {len(devices)} devices; use 0 '
                        '(all devices)')
    devices = devices[:num_devices]
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
    where = (f'{n} devices ({jax.process_count()} processes x {n // jax.process_count()})'
             if jax.process_count() > 1 else f'{n} devices')
    raise ConfigError(
        f'config.batch_size={batch_size} is not divisible by the {where}; use a multiple of '
        f'{n}, e.g. {lo or n} or {lo + n}')


def is_main_process() -> bool:
  """Only process 0 writes logs, sample grids and metrics (all take part in checkpointing)."""
  return jax.process_index() == 0


# Environment variables through which a cluster announces the process count, with the launcher
# that sets them; jax.distributed.initialize() reads the same variables.
_CLUSTER_COUNT_VARS = (('SLURM_NTASKS', 'SLURM'), ('OMPI_COMM_WORLD_SIZE', 'Open MPI'))


def _env_process_count(env: Mapping[str, str]):
  """(count, variable) announced by the cluster environment, or (None, None)."""
  for var, _ in _CLUSTER_COUNT_VARS:
    if env.get(var, '').isdigit():
      return int(env[var]), var
  hosts = env.get('TPU_WORKER_HOSTNAMES', '')
  if hosts:
    return len(hosts.split(',')), 'TPU_WORKER_HOSTNAMES'
  return None, None


def distributed_args(coordinator_address: Optional[str], num_processes: Optional[int],
                     process_id: Optional[int], mode: str = 'auto',
                     env: Optional[Mapping[str, str]] = None) -> Optional[dict]:
  """Decides whether and how to call ``jax.distributed.initialize``.

  Returns None for a single-process run, or the keyword arguments for ``initialize`` (empty
  when JAX detects the cluster itself). Raises UserError, naming both numbers, when the flags
  contradict each other or the environment.

  Args:
    coordinator_address, num_processes, process_id: the explicit flags (None when unset).
    mode: 'auto' (initialize when the flags or the environment describe several processes),
      'on' (always; JAX detects the cluster) or 'off' (never).
    env: the environment (default ``os.environ``).
  """
  env = os.environ if env is None else env
  if mode not in ('auto', 'on', 'off'):
    raise UserError(f'--distributed={mode!r} is not valid; use auto, on or off')
  explicit = {k: v for k, v in (('coordinator_address', coordinator_address),
                                ('num_processes', num_processes),
                                ('process_id', process_id)) if v is not None}
  if mode == 'off':
    if explicit:
      raise UserError(f'--distributed=off contradicts --{next(iter(explicit))}; drop one of them')
    return None
  env_count, env_var = _env_process_count(env)
  if num_processes is not None:
    if num_processes < 1:
      raise UserError(f'--num_processes={num_processes} must be >= 1')
    if env_count is not None and env_count != num_processes:
      raise UserError(f'--num_processes={num_processes} does not match {env_var}={env_count} of '
                      f'this job; pass --num_processes={env_count} or drop the flag')
  if process_id is not None:
    total = num_processes if num_processes is not None else env_count
    if total is None:
      raise UserError(f'--process_id={process_id} needs --num_processes (and '
                      '--coordinator_address) or a cluster environment (SLURM, MPI, TPU)')
    if not 0 <= process_id < total:
      raise UserError(f'--process_id={process_id} must lie in [0, {total}) for {total} '
                      'processes')
  if explicit:
    missing = [k for k in ('coordinator_address', 'num_processes', 'process_id')
               if k not in explicit]
    if missing and env_count is None:
      raise UserError(f'--{next(iter(explicit))} given without --{" --".join(missing)}; pass '
                      'all three, or none inside a SLURM/MPI/TPU job')
    return explicit
  if mode == 'on' or (env_count is not None and env_count > 1) or env.get(
      'JAX_COORDINATOR_ADDRESS'):
    return {}
  return None


def initialize(coordinator_address=None, num_processes=None, process_id=None, mode='auto'):
  """Starts ``jax.distributed`` when needed (before any other JAX call); returns whether it did."""
  kwargs = distributed_args(coordinator_address, num_processes, process_id, mode)
  if kwargs is None:
    return False
  jax.distributed.initialize(**kwargs)
  return True
