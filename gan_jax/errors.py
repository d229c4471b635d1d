"""Errors that are the user's to fix.

A `UserError` is bad input: a config value, a path, a data file. Entry points catch it, print its
one-line message to stderr and exit with status 2 (no traceback unless `--verbose`). Anything else
is a bug and exits 1 with a traceback.
"""


class UserError(Exception):
  """Bad input. The message is one line naming the bad value and what would be valid."""


class DataError(UserError):
  """A dataset could not be found, read or validated."""


class ConfigError(UserError):
  """A config value is invalid or inconsistent with the workdir."""


class TrainingDiverged(Exception):
  """A loss or gradient norm became NaN/Inf. Not bad input (exit 1), but not a bug either: the
  message names the step, the quantity and the last good checkpoint, and nothing was saved."""
