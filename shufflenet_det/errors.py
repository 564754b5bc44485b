"""Errors that mean "the input is wrong", as opposed to a bug. The tools print their message
on one line and exit with status 2 (``shufflenet_det.apis.run_tool``)."""


class InputError(Exception):
    """Bad input: the message names the value or file and what was expected."""


class InputFileNotFoundError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class ConfigError(InputError, ValueError):
    """A config setting or command-line option that cannot work."""


class CheckpointMismatchError(InputError, RuntimeError):
    """A checkpoint whose tensors, or whose recorded architecture, do not fit the model."""


class CheckFailedError(Exception):
    """A tool ran to the end but its result failed the check it makes (exit status 1)."""
