"""The error an `exbus` command raises for bad input: the operator sees one line,
``exbus <command>: <message>``, on stderr and exit status 2, never a traceback
(services.cli.main prints it)."""

from __future__ import annotations

USAGE_EXIT = 2
"""Exit status of a command given bad input (the status argparse uses for usage errors)."""


class CommandError(Exception):
    """Bad input to a command: an argument, a file, the config, an unreachable bus.
    The message is the whole line after ``exbus <command>:``; it never holds a secret."""
