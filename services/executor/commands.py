"""`exbus execute`: run executor replicas against NATS (NATS_URL) until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import os
from typing import Any

from services.config import config_for_command


def register(sub: Any) -> None:
    p = sub.add_parser("execute", help="run order-executor replicas")
    p.add_argument("--replicas", type=int, default=1, help="replicas in this process (each with its own connection)")
    p.add_argument("--sim-credentials", action="store_true",
                   help="use the venue simulator's paper keys (demo only; production keys come from the vault)")
    p.add_argument("--identity", help="service identity key file for the vault (default: [executor] identity_file)")
    p.set_defaults(handler=cmd_execute)


def cmd_execute(args: argparse.Namespace) -> int:
    from services.bus.connect import connect
    from services.bus.lifecycle import run_until_signal
    from services.executor.credentials import StaticCredentials, simulator_credentials
    from services.executor.egress import with_egress_check
    from services.executor.service import run_executor

    config = config_for_command(args)
    if not config.nats.url:
        raise SystemExit("exbus execute: set NATS_URL (or nats.url); `exbus up` runs executors on the embedded server")
    identity_file = args.identity or config.executor.identity_file
    if args.sim_credentials and identity_file:
        raise SystemExit("exbus execute: --sim-credentials or a vault identity, not both")
    if not args.sim_credentials and not identity_file:
        raise SystemExit("exbus execute: name the vault identity (--identity FILE or [executor] identity_file; "
                         "`exbus service register executor` creates one) or use --sim-credentials")
    if identity_file and not os.access(identity_file, os.R_OK):
        raise SystemExit(f"exbus execute: cannot read the vault identity file {identity_file}")

    async def main(stop: asyncio.Event) -> int:
        from services.observability.runtime import Observability

        credentials: Any = simulator_credentials() if args.sim_credentials else StaticCredentials({})
        vault_nc = None
        if identity_file:
            from services.vault.client import CredentialsClient
            from services.vault.tokens import load_service_key

            vault_nc = await connect(config.nats, name="exbus-executor-vault")
            credentials = CredentialsClient(vault_nc, config.executor.service_id, load_service_key(identity_file),
                                            timeout_s=config.vault.request_timeout_s)
            await credentials.start()
        ready = asyncio.Event()
        try:
            async with Observability("executor", config.observability, ready=ready) as observability:
                await run_executor(observability.connections(lambda: connect(config.nats, name="exbus-executor")),
                                   config.executor, with_egress_check(credentials, config.executor), stop,
                                   replicas=args.replicas, ready=ready,
                                   environments=config.environments())
        finally:
            if vault_nc is not None:
                await credentials.close()
                await vault_nc.drain()
        return 0

    return run_until_signal(main)
