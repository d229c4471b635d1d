"""Trains a GAN: ``python launch.py --config=experiments/mnist.py [--workdir=runs/mnist]``.

Exit codes: 0 done (or stopped cleanly by SIGTERM), 1 internal error or divergence, 2 bad input.
"""

from absl import app, flags
from ml_collections import config_flags

from gan_jax import cli, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'experiments/toy2d.py', 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config.name>).')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = cli.config_flag(FLAGS)
  train.train_and_evaluate(config, FLAGS.workdir or f'runs/{config.name}')


if __name__ == '__main__':
  cli.run(main)
