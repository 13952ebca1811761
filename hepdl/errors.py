"""Exceptions that hepdl raises for problems a user can fix.

The CLI catches :class:`HepdlError` and prints its message alone, without a
traceback, so every message must name the file, tree, branch or config key at fault.
"""

from __future__ import annotations


class HepdlError(Exception):
    """A problem with the user's input or configuration, explained in the message."""


class InputError(HepdlError, ValueError):
    """A ROOT file, tree, branch or array that cannot be used as given."""


class ConfigError(HepdlError, ValueError):
    """A configuration key with a missing or invalid value."""


class ModelFileError(HepdlError, ValueError):
    """A file given as a hepdl model that is not one, or is damaged."""


class OutputError(HepdlError, OSError):
    """An output that cannot be written (read-only file system, full disk, ...); names the path."""
