"""Cluster failover numbers: the scenario of tests/ops/test_cluster_failover.py (a 3-node
JetStream cluster on loopback, R3 streams and buckets, executor processes placing IOC
orders on the simulator, `exbus replay` publishing Kraken market data) with the node
leading ORDERS, ORDER_EVENTS, KV orders/ratelimits and the executors' consumer (and the
meta leader where it moves) killed with SIGKILL mid-run and restarted, ``--kills`` times
(each time the node then leading, once the last one has caught up). Writes:

- outage_p50_s / outage_worst_s: per kill, the longest time without any terminal order
  event (times ORDER_EVENTS stored them), from the last event before the kill;
- first_new_order_*: kill -> first event of a command published after the kill;
- last_order_path_election_*: kill -> the last of ORDERS, its consumer, ORDER_EVENTS,
  KV orders, KV ratelimits to have a new leader (the survivors' logs): the server's part;
- orders_flow_after_last_election_*: what exbus adds to it (reconnect, re-fetch, retries);
- per kill, the phases: route loss, each group's election, services reconnected, the
  strategy's first acknowledged publish; commands_over_ack_wait (0: none waited for it);
- outcome: lost / repeated / not placed once / venue rejections (all 0 on a good run).

    .venv/bin/python bench/cluster_failover.py [--kills K] [--commands N] [--rate R] [--outage S]
                                               [--workdir DIR] [--out bench/results/failover.json]
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
    # the replayed market data (30 s recorded) slowed down to last the whole run
    replay_speed = min(0.6, 30.0 / (30.0 + args.kills * (args.outage + 12.0)))
    scenario = Scenario(commands=args.commands, publish_per_s=args.rate, executors=args.executors,
                        outage_s=args.outage, kills=args.kills, replay_speed=round(replay_speed, 3))
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
                "ORDER_EVENTS, KV orders/ratelimits and the executors' consumer is SIGKILLed and restarted, "
                f"{args.kills} times",
        "server_floor": "nats-server raft: a follower campaigns when no heartbeat came for a random 4-9 s "
                        "(minElectionTimeout/maxElectionTimeout in server/raft.go, not configurable; a closed "
                        "route does not start an election), each group on its own timer",
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
    parser.add_argument("--kills", type=int, default=5, help="kills of the leading node, one after another")
    parser.add_argument("--commands", type=int, default=300, help="commands published at least")
    parser.add_argument("--rate", type=float, default=12.0, help="commands published per second")
    parser.add_argument("--executors", type=int, default=3)
    parser.add_argument("--outage", type=float, default=12.0, help="seconds between a kill and the restart")
    parser.add_argument("--workdir", help="run here and keep the logs (default: a temporary directory)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "failover.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
