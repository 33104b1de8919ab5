"""The `exbus` command: one entry point, a subcommand per service and tool.

Each package contributes its subcommands through ``register(subparsers)`` in its
``commands`` module, listed in COMMAND_MODULES.
"""

from __future__ import annotations

import argparse
import importlib
import sys

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


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every package's subcommands."""
    parser = argparse.ArgumentParser(prog="exbus", description="exchange gateway on NATS")
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


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and run the chosen subcommand; returns its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
