"""After a short real run (a real nats-server, the venue simulator, a replay of recorded
Kraken traffic from ../shared/data/recorded), each service's GET /metrics shows the
documented metrics with the values the run produced, and /healthz and /readyz answer.

Counters live for the whole test process, so each test compares a scrape taken before
its run with one taken after.
"""

from __future__ import annotations

import asyncio
import io
import re
from decimal import Decimal
from typing import Any

import msgspec
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import schemas
from schemas import CancelOrder, PlaceOrder, subjects
from services.bus.streams import ensure_streams
from services.config import Config, StreamSettings
from services.executor.credentials import simulator_credentials
from services.executor.service import run_executor
from services.executor.settings import ExecutorSettings
from services.ingestor.replay import load_recording, run_replay
from services.observability.catalog import INGESTOR
from services.observability.runtime import Observability
from services.simulator import Simulator
from services.vault.client import CredentialsClient, VaultDenied
from services.vault.dev import dev_bootstrap
from services.vault.service import run_vault

from .conftest import FREE_PORTS, eventually, get, scrape

pytestmark = pytest.mark.timeout(120)


async def _probes(obs: Observability, service: str) -> None:
    status, _, body = await get(f"{obs.url}/healthz")
    assert status == 200 and '"alive": true' in body
    status, _, body = await get(f"{obs.url}/readyz")
    assert status == 200, body
    assert f'"checks": {{"nats": true, "{service}": true}}' in body


def _place(i: int) -> PlaceOrder:
    return PlaceOrder(command_id=f"obs-cmd-{i}", venue="binance", account="demo", symbol="NKN-USDT",
                      client_order_id=f"obs-ord-{i}", side="buy", order_type="limit",
                      quantity=Decimal("100"), price=Decimal("0.30"))


async def test_executor_counts_commands_by_outcome_latency_and_rate_limit_blocks(nats_url: str) -> None:
    # the simulated Binance takes 4 new orders per 10 s: the 5th order gets a 429, the fleet
    # blocks, the command is deferred and accepted once the window has passed
    async with Simulator({"replay": False, "binance": {"limits": {"orders_10s": 4}}}) as sim:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_streams(js, StreamSettings())
        events: list[schemas.OrderEvent] = []
        dead: list[Any] = []

        async def on_event(msg: Any) -> None:
            events.append(schemas.decode(msg.data, schemas.OrderEvent))

        async def on_dead_letter(msg: Any) -> None:
            dead.append(msg)

        await nc.subscribe("orders.events.>", cb=on_event)
        await nc.subscribe("orders.deadletter.>", cb=on_dead_letter)
        stop, ready = asyncio.Event(), asyncio.Event()
        settings = ExecutorSettings(venue_urls={"binance": sim.binance_url, "upbit": sim.upbit_url},
                                    tracker_interval_s=0.3)
        async with Observability("executor", FREE_PORTS, ready=ready) as obs:
            fleet = asyncio.create_task(run_executor(obs.connections(lambda: nats.connect(nats_url)), settings,
                                                     simulator_credentials("demo"), stop, replicas=2, ready=ready))
            await asyncio.wait_for(ready.wait(), 30)
            await _probes(obs, "executor")
            before = await scrape(obs.url)
            places = [_place(i) for i in range(5)]
            for c in places:
                await js.publish(subjects.orders_submit("binance", "demo"), schemas.encode(c),
                                 headers={"Nats-Msg-Id": c.command_id})
            unknown = CancelOrder(command_id="obs-cancel-1", venue="binance", account="demo", symbol="NKN-USDT",
                                  client_order_id="obs-no-such-order")
            await js.publish(subjects.orders_submit("binance", "demo"), schemas.encode(unknown))
            broken = {"type": "place", "command_id": "obs-bad-1", "venue": "binance", "account": "demo",
                      "symbol": "NKN-USDT", "client_order_id": "obs-bad-1", "side": "buy", "order_type": "limit",
                      "quantity": "-5", "price": "0.3"}
            await js.publish(subjects.orders_submit("binance", "demo"), msgspec.json.encode(broken))
            await js.publish(subjects.orders_submit("binance", "demo"), b"\x00not json at all")
            await eventually(lambda: len(events) >= 7 and dead, timeout=60, what="7 outcome events and a dead letter")
            after = await scrape(obs.url)
            stop.set()
            await asyncio.wait_for(fleet, 60)
        await nc.drain()
        usage = sim.ledger_snapshot()["limits"]["binance"]

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    statuses = {e.command_id: e.status for e in events}
    assert [statuses[c.command_id] for c in places] == ["accepted"] * 5
    assert statuses["obs-cancel-1"] == "rejected" and statuses["obs-bad-1"] == "rejected"
    assert delta("exbus_commands_total", venue="binance", outcome="accepted") == 5
    assert delta("exbus_commands_total", venue="binance", outcome="rejected") == 2
    assert delta("exbus_commands_total", venue="binance", outcome="dead_letter") == 1
    # every 429 the venue answered blocked the fleet once and deferred its command once
    answered_429 = sum(scope.get("status_429", 0) + scope.get("status_418", 0) for scope in usage.values())
    assert answered_429 >= 1, usage
    assert delta("exbus_ratelimit_blocks_total", venue="binance") == answered_429
    assert delta("exbus_commands_total", venue="binance", outcome="deferred") == answered_429
    # latency: one observation per command whose event the worker published after receiving it
    assert delta("exbus_command_latency_seconds_count", venue="binance") == 6
    assert delta("exbus_command_latency_seconds_bucket", venue="binance", le="+Inf") == 6
    assert delta("exbus_command_latency_seconds_sum", venue="binance") > 0
    budget = [s for s in after.series("exbus_ratelimit_budget_used_ratio") if s["venue"] == "binance"]
    assert {s["limit"] for s in budget} >= {"orders_10s"}, budget
    assert all(after.value("exbus_ratelimit_budget_used_ratio", **s) >= 0 for s in budget)
    info = after.series("exbus_service_info")
    assert len([s for s in info if s["service"] == "executor"]) >= 2
    assert all(after.value("exbus_service_info", **s) == 1 for s in info)


async def test_ingestor_metrics_equal_what_a_replay_published(nats_url: str, shared_data) -> None:
    recorded = shared_data / "recorded"
    recording = load_recording([recorded / "KRAKEN.ws.50.0", recorded / "KRAKEN.ws.48.0", recorded / "KRAKEN.ws.49.0"])
    # one book update carries a wrong checksum, as a corrupted frame would: a checksum failure and a gap
    i = next(i for i, (_, f) in enumerate(recording.frames) if isinstance(f, str) and re.search(r'"c":"\d+"', f))
    ts, frame = recording.frames[i]
    recording.frames[i] = (ts, re.sub(r'"c":"\d+"', '"c":"1"', frame, count=1))
    nc = await nats.connect(nats_url)
    INGESTOR.subscribed.discard("kraken")  # the catalog is per process: forget feeds earlier tests ran here
    async with Observability("ingestor", FREE_PORTS, ready=lambda: INGESTOR.feeds_subscribed(["kraken"])) as obs:
        await obs.register(nc)
        status, _, body = await get(f"{obs.url}/readyz")
        assert status == 503 and '"ingestor": false' in body  # not subscribed yet
        before = await scrape(obs.url)
        summary, ingestor = await run_replay(nc, recording)
        await _probes(obs, "ingestor")  # subscribed once: ready, though the replay has ended
        after = await scrape(obs.url)
    await nc.drain()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    published = ingestor.published("kraken")
    assert published["book"] > 0 and published["status"] >= 3  # connected, gap, disconnected
    for channel in ("trade", "ticker", "book", "bbo", "status"):
        assert delta("exbus_md_messages_total", venue="kraken", channel=channel) == published[channel], channel
    assert summary["checksum_failures"] == 1 and summary["gaps"] >= 1
    assert delta("exbus_md_checksum_failures_total", venue="kraken") == summary["checksum_failures"]
    assert delta("exbus_md_gaps_total", venue="kraken") == summary["gaps"]
    assert delta("exbus_md_resyncs_total", venue="kraken") == summary["resyncs"]
    # recorded venue times are years before this replay's receive times: a replay measures
    # no feed lag (ExbusFeedLagHigh must not fire on it)
    assert after.value("exbus_md_feed_lag_seconds", venue="kraken") == before.value("exbus_md_feed_lag_seconds", venue="kraken")
    assert after.value("exbus_md_feed_stale", venue="kraken") == 0
    assert after.value("exbus_md_feed_up", venue="kraken") == 0  # the recording ended: disconnected


async def test_vault_counts_grants_by_venue_and_denials_by_reason(nats_url: str, tmp_path) -> None:
    nc = await nats.connect(nats_url)
    await ensure_streams(nc.jetstream(), StreamSettings())
    config = Config()
    identity = await dev_bootstrap(nc, config, root=tmp_path, out=io.StringIO())
    serving, stop = asyncio.Event(), asyncio.Event()
    async with Observability("vault", FREE_PORTS, ready=serving) as obs:
        await obs.register(nc)
        before = await scrape(obs.url)
        vault = asyncio.create_task(run_vault(nc, config, stop, ready=serving))
        await asyncio.wait_for(serving.wait(), 30)
        await _probes(obs, "vault")
        executor = CredentialsClient(nc, identity.service_id, identity.private_key)
        await executor.get("binance", "demo")
        await executor.get("upbit", "demo")
        with pytest.raises(VaultDenied) as forbidden:
            await executor.get("kraken", "desk1")  # the dev policy covers the simulator's paper accounts only
        with pytest.raises(VaultDenied) as stranger:
            await CredentialsClient(nc, "intruder", Ed25519PrivateKey.generate()).get("binance", "demo")
        after = await scrape(obs.url)
        stop.set()
        await vault
        await executor.close()
    await nc.drain()

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert (forbidden.value.code, stranger.value.code) == ("forbidden", "unauthenticated")
    assert delta("exbus_vault_grants_total", venue="binance") == 1
    assert delta("exbus_vault_grants_total", venue="upbit") == 1
    assert delta("exbus_vault_denials_total", reason="forbidden") == 1
    assert delta("exbus_vault_denials_total", reason="unauthenticated") == 1
    assert "exbus_vault_grants_total" in after.text and "exbus_service_info{service=\"vault\"" in after.text
