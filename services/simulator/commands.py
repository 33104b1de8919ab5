"""`exbus sim`: run the venue simulator standalone and print its URLs."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import msgspec

from services.simulator.config import SimConfig, load_sim_config, sim_config

FAULT_FLAGS = {
    "error_5xx_ratio": "error_5xx",
    "timeout_ratio": "timeout",
    "drop_ratio": "drop",
    "malformed_ratio": "malformed",
}


def register(sub: Any) -> None:
    """Add ``exbus sim`` to the ``exbus`` parser."""
    p = sub.add_parser("sim", help="run the venue simulator (all nine venues on loopback) and print their URLs")
    p.add_argument("--sim-config", help="TOML file: its [sim] table, else the whole file (default: [sim] of --config)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--binance-port", type=int, help="Binance port (default: a free one)")
    p.add_argument("--upbit-port", type=int, help="Upbit port (default: a free one)")
    p.add_argument("--venues", help="comma-separated venues to serve (default: all nine)")
    p.add_argument("--no-replay", action="store_true", help="keep the recorded books still (no stream replay)")
    p.add_argument("--replay-speed", type=float, help="replay pace relative to the recording")
    p.add_argument("--seed", type=int, help="seed of the fault dice")
    p.add_argument("--latency-ms", type=float, help="added latency on every venue request")
    for flag, kind in FAULT_FLAGS.items():
        p.add_argument(f"--{flag.replace('_', '-')}", type=float, dest=flag,
                       help=f"share of order placements that get the {kind} fault")
    p.set_defaults(handler=cmd_sim)


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The simulator config a command line asks for: file, then flags."""
    if args.sim_config:
        config = load_sim_config(args.sim_config)
    elif getattr(args, "config", None):
        config = load_sim_config(args.config, table_only=True)
    else:
        config = sim_config({})
    raw = msgspec.to_builtins(config)
    for name in ("host", "binance_port", "upbit_port", "replay_speed", "seed"):
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    if args.no_replay:
        raw["replay"] = False
    if args.venues:
        raw["venues"] = [v.strip() for v in args.venues.split(",") if v.strip()]
    if args.latency_ms:
        raw["faults"].append({"kind": "latency", "route": "*", "latency_ms": args.latency_ms})
    for flag, kind in FAULT_FLAGS.items():
        ratio = getattr(args, flag)
        if ratio:
            raw["faults"].append({"kind": kind, "route": "place", "ratio": ratio})
    return sim_config(raw)


def cmd_sim(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import run_until_signal
    from services.simulator.server import Simulator

    from services.errors import CommandError

    try:
        config = config_from_args(args)
    except (ValueError, OSError) as e:  # ConfigError, msgspec's errors, an unreadable file
        raise CommandError(str(e)) from None

    async def main(stop: asyncio.Event) -> int:
        async with Simulator(config) as sim:
            for name, url in sim.urls().items():
                print(f"{name}={url}")
            print(f"LEDGER={next(iter(sim.base_urls.values()))}/__sim/ledger", flush=True)
            await stop.wait()
        return 0

    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    return run_until_signal(main)
