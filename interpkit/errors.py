"""Exception and warning types raised by interpkit and its plugins.

Every error that a user can cause (bad input, a model that cannot serve a method, a
broken plugin) is an :class:`InterpkitError`. The CLI prints these as one line and
exits with status 2; anything else is a bug and keeps its traceback.

The concrete classes also derive from the matching built-in type (``ValueError``,
``TypeError``, ``FileNotFoundError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = [
    "CapabilityError",
    "InputError",
    "InputTypeError",
    "InterpkitError",
    "InterpkitWarning",
    "MissingFileError",
    "OutOfSpaceError",
    "PluginError",
    "first_line",
]


class InterpkitError(Exception):
    """Base class of every error a user can cause; the CLI reports it in one line."""


class InputError(InterpkitError, ValueError):
    """An argument, file or record has the wrong value, shape or content."""


class InputTypeError(InterpkitError, TypeError):
    """An argument has the wrong type (e.g. a string where an array is expected)."""


class MissingFileError(InterpkitError, FileNotFoundError):
    """A file the user named does not exist or cannot be read."""


class OutOfSpaceError(InterpkitError, OSError):
    """A file could not be written for lack of room (full disk, quota or file-size limit)."""


class CapabilityError(InterpkitError):
    """A model or backend cannot provide what a method needs (e.g. gradients)."""


class PluginError(InterpkitError):
    """A plugin failed to import or register, or two plugins claim one name."""


class InterpkitWarning(UserWarning):
    """Warnings from interpkit; filter them with ``warnings.simplefilter(..., InterpkitWarning)``."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name when empty), for one-line user errors.

    Backends quote a framework's own failure this way inside an :class:`InputError` that names
    the file and the fix, instead of showing the framework's traceback.
    """
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
