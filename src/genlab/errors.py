"""The errors a user fixes by changing the command: a name, a value, a file, a split, a resume.

Each message says what is wrong and how to fix it, on one line. The command line of every
experiment (``ingredients.observers.run_cli``) prints a :class:`GenlabError` as that one line,
without a traceback, and exits with status 2; any other exception is a bug and keeps its traceback.
Checks that need no compute raise these from Sacred's config hooks, before the observers start, so
a refused command records nothing. Each class also derives from the built-in exception it refines
(``ValueError``, ``KeyError``, ``FileNotFoundError``), so library callers can catch either.
"""

from __future__ import annotations


class GenlabError(Exception):
    """Bad input, reported as one line naming the fix."""


class ConfigError(GenlabError, ValueError):
    """A config value that cannot work (a length, a rate, an option that needs another)."""


class SplitError(ConfigError):
    """A generalisation split that leaves a side empty on the data the config names."""


class MissingFile(GenlabError, FileNotFoundError):
    """A file the config names (or its default) is not there; the message says where it comes from."""


class CorruptFile(GenlabError, ValueError):
    """A file that exists but is damaged or not in its published format."""


__all__ = ["ConfigError", "CorruptFile", "GenlabError", "MissingFile", "SplitError"]
