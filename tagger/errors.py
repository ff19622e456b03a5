"""User-facing errors: one family, one line each, exit code 2 from the command line.

Anything else that escapes a command is a bug ("internal error", exit code 1). Each class also
derives from the builtin it refines, so ``except ValueError`` keeps catching bad settings.
"""


class UserError(Exception):
    """Something the user can fix; the message is one line that names the flag, file or value."""


class ConfigError(UserError, ValueError):
    """A bad setting; the message names the flag."""


class DataError(UserError, ValueError):
    """Missing, corrupted or mismatching data."""


class CheckpointError(UserError, ValueError):
    """A missing, foreign, corrupted or mismatching checkpoint."""


class TrainingError(UserError, RuntimeError):
    """Training cannot go on (e.g. a non-finite loss); the last good checkpoint or weights are kept."""
