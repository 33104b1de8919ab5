"""`exbus execute`: run executor replicas against NATS (NATS_URL) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services.bus.connect import connect
from services.bus.lifecycle import run_until_signal
from services.config import config_for_command


def register(sub: Any) -> None:
    p = sub.add_parser("execute", help="run order-executor replicas")
    p.add_argument("--replicas", type=int, default=1, help="replicas in this process (each with its own connection)")
    p.add_argument("--sim-credentials", action="store_true",
                   help="use the venue simulator's paper keys (demo only; production keys come from the vault)")
    p.set_defaults(handler=cmd_execute)


def cmd_execute(args: argparse.Namespace) -> int:
    from services.executor.credentials import StaticCredentials, simulator_credentials
    from services.executor.service import run_executor

    config = config_for_command(args)
    if not config.nats.url:
        raise SystemExit("exbus execute: set NATS_URL (or nats.url); `exbus up` runs executors on the embedded server")
    credentials = simulator_credentials() if args.sim_credentials else StaticCredentials({})

    async def main(stop: asyncio.Event) -> int:
        await run_executor(lambda: connect(config.nats, name="exbus-executor"), config.executor, credentials, stop,
                           replicas=args.replicas)
        return 0

    return run_until_signal(main)
