"""Vault grant benchmark: full credential round trips on a loopback nats-server.

One round trip is what an executor does when its lease is gone: a fresh X25519 key and
an EdDSA token, ``vault.credentials.get``, the vault's checks (token, jti claim, policy,
KV record, decrypt, seal, acknowledged audit event), and opening the sealed grant.
Leases are 1 s (less than the client's 2 s margin), so every get asks the vault.

- ``latency``: one request at a time, p50/p99/mean in ms;
- ``throughput``: C concurrent requesters, grants/s and p50/p99 under that load;
both with one vault and with two vault replicas (separate processes, queue group).

    .venv/bin/python bench/vault_grants.py [--requests N] [--concurrency C] [--out bench/results/vault.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from schemas.vault import Credentials  # noqa: E402
from services.bus.embedded import EmbeddedNats  # noqa: E402
from services.bus.streams import ensure_streams  # noqa: E402
from services.config import Config, StreamSettings  # noqa: E402
from services.vault import admin  # noqa: E402
from services.vault.client import CredentialsClient  # noqa: E402
from services.vault.crypto import MasterKeyRing  # noqa: E402
from services.vault.settings import VaultSettings  # noqa: E402
from services.vault.store import VaultStore  # noqa: E402
from services.vault.tokens import public_key_pem  # noqa: E402

CREDS = Credentials(api_key="bench-api-key", secret="bench-secret")
MASTER_ENV = "EXBUS_BENCH_MASTER_KEY"


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1e3, 3)


def _replica(url: str, ready: "mp.synchronize.Event", done: "mp.synchronize.Event") -> None:
    """One vault replica process: serve until ``done``."""
    from services.logs import configure_logging
    from services.vault.service import run_vault

    configure_logging("warning", "json")

    async def main() -> None:
        nc = await nats.connect(url)
        stop, served = asyncio.Event(), asyncio.Event()
        settings = VaultSettings(master_key_env=MASTER_ENV, policy={"executor": ["binance/*"]}, lease_ttl_s=1)
        task = asyncio.create_task(run_vault(nc, Config(vault=settings), stop, ready=served))
        await served.wait()
        ready.set()
        await asyncio.get_running_loop().run_in_executor(None, done.wait)
        stop.set()
        await task
        await nc.drain()

    asyncio.run(main())


async def _timed_gets(client: CredentialsClient, n: int, out: list[float]) -> None:
    for _ in range(n):
        t = time.perf_counter()
        got = await client.get("binance", "bench")
        out.append(time.perf_counter() - t)
        assert got == CREDS


async def run_case(url: str, key: Ed25519PrivateKey, replicas: int, requests: int, concurrency: int) -> dict:
    ctx = mp.get_context("spawn")
    done = ctx.Event()
    procs = []
    for _ in range(replicas):
        ready = ctx.Event()
        p = ctx.Process(target=_replica, args=(url, ready, done), daemon=True)
        p.start()
        procs.append(p)
        await asyncio.get_running_loop().run_in_executor(None, ready.wait, 60)
    nc = await nats.connect(url)
    try:
        client = CredentialsClient(nc, "executor", key, timeout_s=10)
        await _timed_gets(client, 50, [])  # warm-up: connections, JIT-free but caches and files warm
        latency: list[float] = []
        await _timed_gets(client, requests, latency)
        loaded: list[float] = []
        clients = [CredentialsClient(nc, "executor", key, timeout_s=10) for _ in range(concurrency)]
        start = time.perf_counter()
        await asyncio.gather(*(_timed_gets(c, requests // concurrency, loaded) for c in clients))
        elapsed = time.perf_counter() - start
        for c in (client, *clients):
            await c.close()
    finally:
        await nc.drain()
        done.set()
        for p in procs:
            p.join(30)
    return {
        "replicas": replicas,
        "latency": {"requests": len(latency), "p50_ms": percentile(latency, 50), "p99_ms": percentile(latency, 99),
                    "mean_ms": round(statistics.fmean(latency) * 1e3, 3)},
        "throughput": {"requests": len(loaded), "concurrency": concurrency,
                       "grants_per_s": round(len(loaded) / elapsed, 1),
                       "p50_ms": percentile(loaded, 50), "p99_ms": percentile(loaded, 99)},
    }


async def main(args: argparse.Namespace) -> dict:
    ring = MasterKeyRing.generate()
    os.environ[MASTER_ENV] = ring.dumps().strip().replace("\n", ",")  # inherited by the replica processes
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory(prefix="exbus-bench-vault-") as tmp:
        async with EmbeddedNats(Path(tmp) / "nats") as server:
            nc = await nats.connect(server.url)
            await ensure_streams(nc.jetstream(), StreamSettings())
            store = await VaultStore.open(nc.jetstream())
            await admin.register_service(nc, store, "executor", public_key_pem(key))
            await admin.add_credentials(nc, store, ring, "binance", "bench", CREDS)
            await nc.drain()
            cases = [await run_case(server.url, key, r, args.requests, args.concurrency) for r in (1, 2)]
    return {
        "benchmark": "vault_grants",
        "what": "full credential round trip over loopback nats-server (token, jti claim, policy, KV read, "
                "decrypt, seal, acked audit event, unseal); leases 1 s so every get asks the vault",
        "target_p99_ms": 5.0,
        "one_vault": cases[0],
        "two_replicas": cases[1],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg_1m_after": round(os.getloadavg()[0], 2)},  # other work on the box shows in the tails
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "vault.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
