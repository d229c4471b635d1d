"""Scale: the same results on 1 device, 8 devices and 2 processes; checkpoints move between them.

conftest gives this process 8 fake CPU devices; ``config.num_devices`` picks how many the mesh
uses. The 2-process test starts two ``launch.py`` processes that talk through jax.distributed
(CPU collectives: gloo).
"""

import os
import re
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import REPO, subprocess_env, write_idx_fixture
from test_configs import _load
from gan_jax import checkpointing, parallel, train
from gan_jax import run as run_lib
from gan_jax.errors import UserError

ATOL = 1e-5  # the issue's tolerance for "the same params" across topologies


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  return write_idx_fixture(str(tmp_path_factory.mktemp('idx')), n_train=128, n_test=16)


def _dcgan(idx_dir, num_devices=0, steps=6):
  """Tiny DCGAN with BatchNorm in G and D and EMA on: the layers that see the batch split."""
  c = _load(os.path.join(REPO, 'experiments', 'mnist.py'), 'smoke')
  c.data.dir, c.data.source = idx_dir, 'idx'
  c.batch_size, c.model.ngf, c.model.ndf = 16, 8, 8
  c.model.latent_dim = 16
  # float32 matmuls (mnist.py's default is bf16 operands): the 1e-5 agreement across topologies
  # is a float32 property. With bf16 operands a different reduction order can flip the bf16
  # rounding of a cotangent, and the runs drift apart by ~1e-3 within 10 steps.
  c.model.matmul_dtype = 'float32'
  c.num_devices, c.num_steps = num_devices, steps
  return c


def _toy(num_devices, steps):
  c = _load(os.path.join(REPO, 'experiments', 'toy2d.py'), 'smoke')
  c.batch_size, c.num_devices, c.num_steps = 32, num_devices, steps
  c.checkpoint_every, c.eval_every = 4, 100
  return c


def _max_diff(a, b):
  la, lb = jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b))
  assert len(la) == len(lb)
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(la, lb) if np.issubdtype(np.asarray(x).dtype, np.floating))


def _run_steps(config, n):
  """(experiment, state after n steps, compiled HLO text of the step)."""
  exp = run_lib.Experiment(config)
  state, arrays, health = exp.init_state(), exp.device_arrays(), exp.new_health()
  compiled = exp.step_fn.lower(state, arrays, health).compile()
  for _ in range(n):
    state, _, health = compiled(state, arrays, health)
  return exp, state, compiled.as_text()


def test_one_and_eight_devices_give_the_same_params(idx_dir):
  """Same config, seed and global batch; BN statistics are global-batch statistics under jit,
  so splitting the batch 8 ways changes nothing but the reduction order."""
  n = 10
  exp1, one, _ = _run_steps(_dcgan(idx_dir, num_devices=1), n)
  exp8, eight, hlo = _run_steps(_dcgan(idx_dir, num_devices=8), n)
  assert exp1.mesh.devices.size == 1 and exp8.mesh.devices.size == 8
  assert int(one.step) == int(eight.step) == n
  diff = _max_diff(one, eight)
  print(f'\n1 vs 8 devices, {n} DCGAN steps (BN in G and D, EMA): max |diff| = {diff:.2e}')
  assert diff <= ATOL
  assert one.g.batch_stats and one.d.batch_stats  # BN statistics were compared too
  # The test can fail: per-device BN statistics (what pmap without an axis_name gives) differ.
  leaf = jax.tree.leaves(eight.g.params)[0]
  assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 8
  # Input side: the dataset is replicated and the batch indices are global, and XLA partitions
  # the gather so that each device reads only its own B/n rows of every global batch.
  gathers = [line for line in hlo.splitlines() if ' gather(' in line and 'u8[' in line]
  assert gathers, 'no uint8 image gather in the compiled step'
  per_device = 16 // 8
  assert all(line.split('u8[')[1].startswith(f'{per_device},') for line in gathers), gathers


@pytest.mark.parametrize('before,after', [(8, 1), (1, 8)])
def test_checkpoint_restores_on_another_topology(before, after, tmp_path):
  """Saved on `before` devices at step 4, resumed on `after` devices to step 8; equals an
  uninterrupted run on `after` devices."""
  work = str(tmp_path / 'run')
  train.train_and_evaluate(_toy(before, 4), work)
  ckpt = checkpointing.Checkpoints(os.path.join(work, 'checkpoints'), create=False)
  assert ckpt.all_steps() == [4]
  ckpt.close()
  resumed_cfg = _toy(after, 8)
  resumed_cfg.allow_config_change = True  # num_steps grows; num_devices may change freely
  resumed = train.train_and_evaluate(resumed_cfg, work)
  full = train.train_and_evaluate(_toy(after, 8), str(tmp_path / 'full'))
  leaf = jax.tree.leaves(resumed.d.params)[0]
  assert len(leaf.sharding.device_set) == after
  diff = _max_diff(resumed, full)
  print(f'\nresume {before} -> {after} devices vs uninterrupted on {after}: max |diff| = {diff:.2e}')
  assert int(resumed.step) == 8 and diff <= ATOL


def test_topology_change_alone_needs_no_allow_config_change(tmp_path):
  work = str(tmp_path / 'run')
  train.train_and_evaluate(_toy(8, 4), work)
  state = train.train_and_evaluate(_toy(2, 4), work)  # same run, other device count: resumes
  assert int(state.step) == 4
  with pytest.raises(UserError, match='num_steps: 4 -> 6'):
    train.train_and_evaluate(_toy(2, 6), work)


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_process(idx_dir, tmp_path):
  """Two launch.py processes x 2 devices (jax.distributed over localhost, gloo collectives)
  train the DCGAN at the same global batch as one process on one device: same params; only
  process 0 writes metrics and pictures."""
  work = str(tmp_path / 'two')
  args = ['--config=experiments/mnist.py:smoke', f'--workdir={work}',
          f'--config.data.dir={idx_dir}', '--config.data.source=idx', '--config.batch_size=16',
          '--config.model.ngf=8', '--config.model.ndf=8', '--config.model.latent_dim=16',
          '--config.model.matmul_dtype=float32',  # as _dcgan: see there
          f'--coordinator_address=localhost:{_free_port()}', '--num_processes=2']
  env = subprocess_env(XLA_FLAGS='--xla_force_host_platform_device_count=2')
  procs = [subprocess.Popen([sys.executable, 'launch.py'] + args + [f'--process_id={i}'],
                            cwd=REPO, env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for i in range(2)]
  outs = [p.communicate(timeout=400) for p in procs]
  for i, (p, (out, err)) in enumerate(zip(procs, outs)):
    assert p.returncode == 0, f'process {i}:\n{out[-2000:]}\n{err[-3000:]}'
  assert 'finished 6 steps' in outs[0][0] and 'finished' not in outs[1][0]

  ref = train.train_and_evaluate(_dcgan(idx_dir, num_devices=1), str(tmp_path / 'one'))
  exp = run_lib.Experiment(_dcgan(idx_dir, num_devices=1))
  ckpt = checkpointing.Checkpoints(os.path.join(work, 'checkpoints'), create=False)
  step, two = ckpt.restore_latest_good(exp.abstract_state())
  ckpt.close()
  assert step == 6
  diff = _max_diff(two, ref)
  print(f'\n2 processes x 2 devices vs 1 process x 1 device, 6 DCGAN steps: max |diff| = {diff:.2e}')
  assert diff <= ATOL
  # One writer: each logged step appears once in metrics.jsonl.
  with open(os.path.join(work, 'metrics.jsonl')) as f:
    logged = [line.split(',')[0] for line in f if '"loss_D"' in line]
  assert len(logged) == len(set(logged)) == 3  # steps 2, 4, 6
  assert os.path.exists(os.path.join(work, 'samples', 'final.png'))


def test_distributed_args_from_flags_and_environment():
  none = {}
  assert parallel.distributed_args(None, None, None, env=none) is None
  assert parallel.distributed_args(None, None, None, env={'SLURM_NTASKS': '1'}) is None
  assert parallel.distributed_args(None, None, None, env={'SLURM_NTASKS': '4'}) == {}
  assert parallel.distributed_args(None, None, None, env={'OMPI_COMM_WORLD_SIZE': '2'}) == {}
  assert parallel.distributed_args(None, None, None, env={'TPU_WORKER_HOSTNAMES': 'a,b'}) == {}
  assert parallel.distributed_args(None, None, None, mode='on', env=none) == {}
  assert parallel.distributed_args('h:1', 2, 1, env=none) == {
      'coordinator_address': 'h:1', 'num_processes': 2, 'process_id': 1}
  assert parallel.distributed_args(None, None, None, mode='off', env={'SLURM_NTASKS': '4'}) is None
  bad = [
      (('h:1', 4, 0, 'auto', {'SLURM_NTASKS': '2'}),
       '--num_processes=4 does not match SLURM_NTASKS=2 of this job; pass --num_processes=2'),
      (('h:1', 2, 2, 'auto', none), '--process_id=2 must lie in [0, 2) for 2 processes'),
      (('h:1', 2, -1, 'auto', none), '--process_id=-1 must lie in [0, 2)'),
      (('h:1', 0, 0, 'auto', none), '--num_processes=0 must be >= 1'),
      (('h:1', None, None, 'auto', none), '--coordinator_address given without --num_processes'),
      ((None, None, 3, 'auto', none), '--process_id=3 needs --num_processes'),
      (('h:1', 2, 0, 'off', none), '--distributed=off contradicts --coordinator_address'),
      ((None, None, None, 'sometimes', none), "--distributed='sometimes' is not valid"),
  ]
  for (addr, n, i, mode, env), msg in bad:
    with pytest.raises(UserError, match=re.escape(msg)):
      parallel.distributed_args(addr, n, i, mode, env)


def test_mesh_size_and_batch_errors_name_both_numbers():
  assert parallel.make_mesh().devices.size == jax.device_count() == 8
  assert parallel.make_mesh(3).devices.size == 3
  with pytest.raises(Exception, match=r'config.num_devices=9 is not available: this job has 8'):
    parallel.make_mesh(9)
  with pytest.raises(Exception, match='batch_size=20 is not divisible by the 8 devices; use a '
                                      'multiple of 8, e.g. 16 or 24'):
    parallel.check_batch_size(20, parallel.make_mesh())
  assert parallel.batch_sharding(parallel.make_mesh(), 1).spec == jax.sharding.PartitionSpec(None, 'data')
