"""Cluster failover numbers: the scenario of tests/ops/test_cluster_failover.py (a 3-node
JetStream cluster on loopback, R3 streams and buckets, executor processes placing IOC
orders on the simulator, `exbus replay` publishing Kraken market data) with the node
leading ORDERS, ORDER_EVENTS, KV orders/ratelimits and the executors' consumer killed
with SIGKILL mid-run and restarted. Writes what it measured:

- time_without_progress_s: longest gap between terminal order events after the kill;
- commands_processed_during_outage: commands whose event arrived while the node was down;
- services_reconnected_s: kill -> every executor and the ingestor connected to a live node;
- restarted_node_current_s: kill -> the restarted node a current replica again;
- md_time_without_messages_s: longest gap in market data at a subscriber after the kill;
- outcome: lost / repeated / not placed once / venue rejections (all 0 on a good run).

    .venv/bin/python bench/cluster_failover.py [--commands N] [--rate R] [--outage S] [--workdir DIR]
                                               [--out bench/results/failover.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.bus.embedded import server_binary  # noqa: E402
from tests.ops.failover import Scenario, run_failover  # noqa: E402


async def main(args: argparse.Namespace) -> dict:
    scenario = Scenario(commands=args.commands, publish_per_s=args.rate, executors=args.executors,
                        outage_s=args.outage)
    if args.workdir:  # kept: server, executor and replay logs to read afterwards
        run = await run_failover(Path(args.workdir), scenario)
    else:
        with tempfile.TemporaryDirectory(prefix="exbus-failover-") as tmp:
            run = await run_failover(Path(tmp), scenario)
    version = subprocess.run([str(server_binary()), "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "benchmark": "cluster_failover",
        "what": "3-node nats-server JetStream cluster on loopback, R3 streams and buckets; executor processes place "
                "IOC orders on the simulator while `exbus replay` publishes Kraken data; the node leading ORDERS, "
                "ORDER_EVENTS, KV orders/ratelimits and the executors' consumer is SIGKILLed and restarted",
        "command": " ".join([".venv/bin/python", "bench/cluster_failover.py", *sys.argv[1:]]),
        "numbers": run.numbers(),
        "outcome": run.outcome(),
        "exit_codes": {"executors": run.executor_codes, "replay": run.replay_code},
        "machine": {"python": platform.python_version(), "nats_server": version, "cpus": os.cpu_count(),
                    "platform": platform.platform(), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commands", type=int, default=300)
    parser.add_argument("--rate", type=float, default=12.0, help="commands published per second")
    parser.add_argument("--executors", type=int, default=3)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds between the kill and the restart")
    parser.add_argument("--workdir", help="run here and keep the logs (default: a temporary directory)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "failover.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
