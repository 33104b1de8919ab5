"""The `exbus` command: one entry point, a subcommand per service and tool.

Each package contributes its subcommands through ``register(subparsers)`` in its
``commands`` module, listed in COMMAND_MODULES.

Bad input never ends in a traceback: a command raises services.errors.CommandError (or
lets one of INPUT_ERRORS through: invalid JSON or TOML, a file it cannot read, an invalid
config, an unreachable NATS) and main() prints ``exbus <command>: <message>`` on one
line of stderr and returns 2, as argparse does for a bad command line. Anything else is
a bug and surfaces as one. With ``EXBUS_LOG_LEVEL=debug`` the traceback of an input
error is printed too, before its line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import ssl
import sys
import tomllib
import traceback
from typing import Any

import msgspec

from services.config import ConfigError
from services.errors import USAGE_EXIT, CommandError

COMMAND_MODULES = [
    "services.bus.commands",        # up, nats, tail, demo, schema export
    "services.venues.commands",     # venue sign, venue call
    "services.ingestor.commands",   # ingest, record, replay
    "services.vault.commands",      # vault, keys, service
    "services.executor.commands",   # execute
    "services.simulator.commands",  # sim
    "services.config_check",        # config check
    "services.observability.status",  # status
    "services.observability.alert_relay",  # alert-relay
    "services.bus.security",        # nats-users, nats-certs
]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (``--help`` still shows the usage)."""

    def error(self, message: str) -> Any:
        self.exit(USAGE_EXIT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every package's subcommands."""
    parser = Parser(prog="exbus", description="exchange gateway on NATS")
    parser.add_argument("--config", help="TOML config file (default: $EXBUS_CONFIG or ./exbus.toml if present)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if not (e.name and name.startswith(e.name)):  # a missing dependency inside it
                raise
            continue
        module.register(sub)
    return parser


FILE_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)
INPUT_ERRORS = (CommandError, ConfigError, json.JSONDecodeError, msgspec.DecodeError, tomllib.TOMLDecodeError,
                UnicodeDecodeError, ssl.SSLError, *FILE_ERRORS)
"""What a command may let through as bad input; each becomes one line and exit status 2
(and nats_errors())."""


def nats_errors() -> tuple[type[BaseException], ...]:
    """nats-py's errors that mean an unreachable or refusing bus; none when nats-py was
    never imported (then none can have been raised: ``exbus --help`` stays quick)."""
    if "nats.errors" not in sys.modules:
        return ()
    import nats.errors
    import nats.js.errors

    return (nats.errors.NoServersError, nats.errors.TimeoutError, nats.errors.NoRespondersError,
            nats.errors.ConnectionClosedError, nats.errors.AuthorizationError,
            nats.js.errors.ServiceUnavailableError)


def input_error_message(e: BaseException) -> str:
    """The one line an input error is reported with (no traceback, no secret: the
    errors above carry file names, keys and decoder positions, never values read)."""
    if isinstance(e, FILE_ERRORS) and e.filename is not None:
        text = f"{e.filename}: {e.strerror or e}"
    elif isinstance(e, json.JSONDecodeError):
        text = f"invalid JSON: {e}"
    elif isinstance(e, msgspec.DecodeError):
        text = f"invalid input: {e}"
    elif isinstance(e, tomllib.TOMLDecodeError):
        text = f"not valid TOML: {e}"
    elif isinstance(e, UnicodeDecodeError):
        text = f"not UTF-8 text: {e.reason} at byte {e.start}"
    elif isinstance(e, ssl.SSLError):
        text = f"TLS: {e}"
    elif type(e).__name__ == "ServiceUnavailableError" and type(e).__module__ == "nats.js.errors":
        text = "JetStream is not available on this NATS server"
    else:  # CommandError, ConfigError, nats-py's errors: their message is the line
        text = str(e) or type(e).__name__
    return re.sub(r"\s*\n\s*", " ", text.strip())


def _input_error(e: BaseException) -> BaseException | None:
    """``e`` itself, or the first leaf of an exception group made only of input errors."""
    if isinstance(e, BaseExceptionGroup):
        leaves = [_input_error(x) for x in e.exceptions]
        return leaves[0] if leaves and all(leaves) else None
    return e if isinstance(e, (*INPUT_ERRORS, *nats_errors())) else None


def command_name(args: argparse.Namespace) -> str:
    """``venue call``, ``keys add``, ``status``: the subcommand a parsed command line runs."""
    nested = [v for k, v in vars(args).items() if k.endswith("_command") and isinstance(v, str)]
    return " ".join([args.command, *nested])


def report(command: str, message: str) -> int:
    """Print one ``exbus <command>: <message>`` line on stderr; the exit status of bad input."""
    line = message if message.startswith("exbus") else f"exbus {command}: {message}"
    print(line, file=sys.stderr, flush=True)
    return USAGE_EXIT


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = command_name(args)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except SystemExit as e:
        if isinstance(e.code, str):  # sys.exit("message"): the command's own one-line refusal
            return report(command, e.code)
        raise
    except BaseException as e:
        found = _input_error(e)
        if found is None:
            raise
        if os.environ.get("EXBUS_LOG_LEVEL", "").lower() == "debug":
            traceback.print_exc()
        return report(command, input_error_message(found))


if __name__ == "__main__":
    sys.exit(main())
