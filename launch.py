"""Trains a GAN: ``python launch.py --config=experiments/mnist.py [--workdir=runs/mnist]``."""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import errors, train

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file('config', 'experiments/toy2d.py', 'Experiment config file.',
                                lock_config=True)
flags.DEFINE_string('workdir', None, 'Run directory (default: runs/<config.name>).')
flags.DEFINE_bool('verbose', False, 'Show tracebacks for bad-input errors too.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  config = FLAGS.config
  workdir = FLAGS.workdir or f'runs/{config.name}'
  try:
    train.train_and_evaluate(config, workdir)
  except errors.UserError as e:
    if FLAGS.verbose:
      raise
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  logging.set_verbosity(logging.WARNING)
  app.run(main)
