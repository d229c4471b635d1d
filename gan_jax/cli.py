"""Exit-code policy shared by the command-line entry points.

0: success, or a clean stop on SIGTERM/SIGINT (a checkpoint was saved).
1: an internal error (traceback), or a diverged run (one line naming step and checkpoint).
2: bad input: a flag, a config value, a path or a data file; one line on stderr, no traceback
   unless ``--verbose``.
"""

import os
import re
import sys
import threading
import time

from absl import app, flags, logging

from gan_jax import allocator, errors

flags.DEFINE_bool('verbose', False, 'Show tracebacks for bad-input errors too.')


def _one_line(e) -> str:
  return ' '.join(str(e).split())


def _flag_error_line(e: Exception, argv) -> str:
  """One line for a flag that failed to parse, without the traceback text config_flags embeds."""
  if isinstance(e, SyntaxError):  # a config file that does not parse
    return (f'{e.filename}, line {e.lineno}: SyntaxError: {e.msg}; fix the config file '
            '(--verbose shows the traceback)')
  msg = _one_line(e)
  if 'Traceback' in msg:  # an exception raised inside a config file's get_config()
    frames = re.findall(r'File "([^"]+)", line (\d+)', str(e))
    last = re.findall(r'(\w+(?:Error|Exception)): (.*)$', msg)
    where = f' ({frames[-1][0]}, line {frames[-1][1]})' if frames else ''
    what = f'{last[-1][0]}: {last[-1][1]}' if last else msg.split('Traceback')[-1]
    msg = re.split(r'Traceback \(most recent call last\):', msg)[0] + what + where
  if isinstance(e, (AttributeError, KeyError)):  # an override of a key the config lacks
    overrides = [a[2:].split('=')[0] for a in argv[1:] if a.startswith('--config.')]
    key = next((o for o in overrides if o.split('.')[-1] in msg), 'config.<key>')
    hint = re.findall(r'Did you mean "([\w.]+)"', msg)
    msg = (f'--{key}: the config has no such key' +
           (f'; did you mean {hint[0]!r}?' if hint else '; see the experiment file for valid keys'))
  return msg


def _negations(argv):
  """``--no-ema`` means ``--noema`` (absl spells a false boolean ``--noNAME``; the hyphen is the
  GNU spelling users type). Only for boolean flags that exist; anything else is left to absl."""
  out = []
  for arg in argv:
    name = arg[len('--no-'):] if arg.startswith('--no-') and '=' not in arg else None
    if name and name in flags.FLAGS and isinstance(flags.FLAGS[name], flags.BooleanFlag):
      arg = f'--no{name}'
    out.append(arg)
  return out


def _parse_flags(argv):
  try:
    return flags.FLAGS(_negations(argv))
  except Exception as e:  # pylint: disable=broad-except
    # Flags and config files are the user's input: a bad value, or a config file that does not
    # parse or whose get_config() raises. One line; --verbose shows the traceback.
    if '--verbose' in argv:
      raise
    print(f'error: {_flag_error_line(e, argv)}', file=sys.stderr)
    sys.exit(2)


def config_flag(flag_values, name='config'):
  """The parsed config; a config file that cannot be loaded is bad input (exit 2)."""
  try:
    config = getattr(flag_values, name)
    config.keys()  # config_flags loads lazily: make a missing file fail here
    return config
  except OSError as e:
    path = flag_values[name].config_filename if hasattr(flag_values[name], 'config_filename') else ''
    raise errors.UserError(f'--{name}={path}: cannot load the config file '
                           f'({_one_line(e).split("Attempted")[0].strip()}); pass an existing '
                           'experiments/*.py file') from None


def check_launch_args(argv, workdir):
  """launch.py takes flags only, and a ``--workdir`` that is given is not empty."""
  if len(argv) > 1:
    raise errors.UserError(f'unexpected arguments {argv[1:]}: launch.py takes flags only, e.g. '
                           '--config=experiments/mnist.py --workdir=runs/mnist')
  if workdir is not None and not workdir.strip():
    raise errors.UserError('--workdir is empty; pass a directory, or leave the flag out for '
                           'runs/<config.name>')


def _exit_with(code: int, e: Exception):
  """Prints the one-line error and exits at once.

  ``os._exit`` skips interpreter teardown, where background threads of orbax/tensorstore can
  print shutdown noise after our line. Nothing is lost: these errors are raised before anything
  is written or after the checkpoint manager was closed (its pending saves finished).
  """
  # A tensorstore read that failed can still complete into the closed manager's event loop a
  # moment later, and Python prints that as a traceback (seen under load in CI). Silence such
  # stray reports and let them pass before the one line.
  sys.unraisablehook = lambda *_: None
  threading.excepthook = lambda *_: None
  time.sleep(0.3)
  print(f'error: {_one_line(e)}', file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def run(main):
  """``absl.app.run(main)`` with our exit codes for bad input and divergence, under tcmalloc
  where the machine has it (``allocator.reexec_with_tcmalloc``: re-executes the command once)."""
  allocator.reexec_with_tcmalloc()

  def wrapped(argv):
    if not flags.FLAGS['verbosity'].present:
      logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    try:
      return main(argv)
    except errors.UserError as e:
      if flags.FLAGS.verbose:
        raise
      _exit_with(2, e)
    except errors.TrainingDiverged as e:
      _exit_with(1, e)

  app.run(wrapped, flags_parser=_parse_flags)
