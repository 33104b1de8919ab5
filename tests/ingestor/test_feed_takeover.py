"""Two `exbus ingest` processes share the Kraken and Bitfinex feeds (replayed recordings,
served afresh to every connection); the owner of a feed is SIGKILLed and the other process
takes it over: it connects, takes a fresh snapshot (or, as a warm standby, publishes the
books it kept), first says ``gap`` (a takeover) on ``md.<venue>.status``, and its books
pass the sequence and checksum checks.
(Rebalancing as processes come and go: tests/ingestor/test_feed_ownership.py.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from schemas.market import BookSnapshot

from .ingest_processes import IngestProcess, Replays, feeds_bus, owner_of, settled_owner, until

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("standby", [False, True], ids=["cold", "warm-standby"])
async def test_a_killed_owners_feeds_are_taken_over_with_a_gap_status_and_fresh_books(
        standby: bool, nats_url: str, tmp_path: Path, shared_data: Path) -> None:
    nc, kv, market = await feeds_bus(nats_url)
    async with Replays(shared_data) as replays:
        config = tmp_path / "exbus.toml"
        config.write_text(replays.config(lease_s=1.0, standby=standby))
        processes = {name: await IngestProcess(name, tmp_path, config, nats_url).started() for name in ("ingest-a", "ingest-b")}
        try:
            async def both_owned() -> bool:
                return all([await owner_of(kv, f"{v}.0") for v in ("kraken", "bitfinex")])
            await until(both_owned, 30, "every feed owned")
            await until(lambda: market.data("kraken", time.monotonic() - 0.5), 15, "kraken data flowing")

            victim = await settled_owner(kv, "kraken.0", processes, standby)
            survivor = next(n for n in processes if n != victim)
            killed_at = time.monotonic()
            await processes[victim].kill()

            await until(lambda: market.takeovers("kraken", killed_at), 15, "kraken taken over")
            (said_at, status), *_ = market.takeovers("kraken", killed_at)
            warm = ", its books kept warm" if standby else ""
            assert status.reason == f"takeover: {survivor} took the feed from {victim} (lease expired){warm}"
            assert await owner_of(kv, "kraken.0") == survivor
            symbols = set(replays.servers["kraken"][1][0].symbols)
            assert {s.symbol for _, s in market.takeovers("kraken", killed_at)} == symbols
            await until(lambda: set(market.first_books("kraken", said_at)) == symbols, 15, "fresh kraken books")
            assert all(isinstance(m, BookSnapshot) for m in market.first_books("kraken", said_at).values())
            await until(lambda: len(market.data("kraken", said_at)) > 200, 15, "kraken data after the takeover")
            assert market.problems("kraken") == []  # sequence and checksum checks pass, before and after
            assert market.problems("bitfinex") == []
        finally:
            for process in processes.values():
                await process.stop()
            await nc.drain()
    assert processes[survivor].proc is not None and processes[survivor].proc.returncode == 0, processes[survivor].log_tail()
