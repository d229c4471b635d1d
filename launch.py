"""Trains a GAN: ``python launch.py --config=experiments/mnist.py [--workdir=runs/mnist]``.

One command for one CPU, a node of k GPUs and many hosts (run it once per host or process; in
SLURM, Open MPI and Cloud TPU pods ``jax.distributed`` starts by itself, elsewhere pass
``--coordinator_address --num_processes --process_id``; docs/scaling.md). Exit codes: 0 done or
stopped cleanly by SIGTERM, 1 internal error or divergence, 2 bad input.
"""

from gan_jax import allocator

allocator.reexec_with_tcmalloc()  # before JAX is imported: see gan_jax/allocator.py

from absl import flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from gan_jax import cli, parallel, train  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'experiments/toy2d.py', 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config.name>).')
flags.DEFINE_enum('distributed', 'auto', ['auto', 'on', 'off'],
                  'Start jax.distributed: auto = when the flags below or the cluster environment '
                  '(SLURM_NTASKS, OMPI_COMM_WORLD_SIZE, TPU_WORKER_HOSTNAMES) name > 1 process.')
flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 (multi-process runs).')
flags.DEFINE_integer('num_processes', None, 'Number of processes of the job.')
flags.DEFINE_integer('process_id', None, 'This process: 0 .. num_processes - 1.')


def main(argv):
  cli.check_launch_args(argv, FLAGS.workdir)
  # Before anything touches a device: after it jax.devices() spans every process.
  parallel.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                      FLAGS.distributed)
  config = cli.config_flag(FLAGS)
  train.train_and_evaluate(config, FLAGS.workdir or f'runs/{config.name}')


if __name__ == '__main__':
  cli.run(main)
