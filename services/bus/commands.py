"""Subcommands of the bus and the system as a whole: up, nats, tail, demo, schema.

The services are imported when a command runs, not at registration: `exbus --help` and a
usage error stay quick."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from services.config import config_for_command
from services.errors import CommandError


def register(sub: Any) -> None:
    """Add this package's subcommands to the ``exbus`` parser."""
    p = sub.add_parser("up", help="run the whole system (embedded NATS unless NATS_URL is set)")
    p.add_argument("--sim", action="store_true", help="also run the venue simulator and point venues at it")
    p.add_argument("--executors", type=int, default=1, help="executor replicas in this process")
    p.set_defaults(handler=cmd_up)

    p = sub.add_parser("nats", help="run only the embedded nats-server and print its URL")
    p.set_defaults(handler=cmd_nats)

    p = sub.add_parser("tail", help="decode and pretty-print messages on a subject pattern")
    p.add_argument("subject", help="subject or pattern, e.g. md.binance.> or orders.events.>")
    p.add_argument("--count", type=int, default=0, help="exit after this many messages")
    p.set_defaults(handler=cmd_tail)

    p = sub.add_parser("demo", help="run the demo on the embedded default, printing what flows")
    p.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("schema", help="wire-contract tools")
    schema_sub = p.add_subparsers(dest="schema_command", required=True)
    e = schema_sub.add_parser("export", help="write JSON Schema + AsyncAPI into schemas/generated/")
    e.add_argument("--out", default=None, help="output directory (default: schemas/generated)")
    e.set_defaults(handler=cmd_schema_export)


def cmd_up(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import run_until_signal
    from services.up import run_up

    config = config_for_command(args)
    return run_until_signal(lambda stop: run_up(config, stop, sim=args.sim, executors=args.executors))


def cmd_nats(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import Bus, run_until_signal

    config = config_for_command(args)
    config.nats.url = ""  # this command exists to run the embedded server

    async def main(stop: asyncio.Event) -> int:
        async with Bus(config, name="exbus-nats") as bus:
            print(bus.url, flush=True)
            await stop.wait()
        return 0

    return run_until_signal(main)


def cmd_tail(args: argparse.Namespace) -> int:
    from services.bus.connect import connect
    from services.bus.lifecycle import run_until_signal
    from services.bus.tail import tail

    config = config_for_command(args)
    if not config.nats.url:
        raise CommandError("set NATS_URL (or nats.url) to the server to read from")

    async def main(stop: asyncio.Event) -> int:
        nc = await connect(config.nats, name="exbus-tail", one_shot=True)
        try:
            await tail(nc, args.subject, count=args.count, out=sys.stdout, stop=stop)
        finally:
            await nc.drain()
        return 0

    return run_until_signal(main)


def cmd_demo(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import run_until_signal
    from services.demo import run_demo

    config = config_for_command(args)
    return run_until_signal(lambda stop: run_demo(config, stop, seconds=args.seconds))


def cmd_schema_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from schemas.export import GENERATED_DIR, export

    try:
        paths = export(Path(args.out) if args.out else GENERATED_DIR)
    except OSError as e:
        raise CommandError(f"cannot write {e.filename or args.out}: {e.strerror or e}") from None
    for p in paths:
        print(p)
    return 0
