"""Keys and endpoints of one environment only, end to end: executor replicas on a real
nats-server against the venue simulator (standing in for the testnets through the
``venue_urls`` override, which wins over the testnet's URLs). A live key on a testnet
venue, and a testnet key on a live venue, end ``rejected`` with ``auth_error`` and never
reach the venue; matching keys trade; a testnet venue without a testnet is refused;
`exbus status` shows each venue's environment."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import msgspec
import nats

from schemas.queries import BalanceQuery, QueryError
from services.executor.client import OrderClient
from services.executor.credentials import StaticCredentials, paper_keys
from services.executor.service import run_executor
from services.executor.settings import ExecutorSettings
from services.observability.runtime import Observability
from services.observability.settings import ObservabilitySettings
from services.observability.status import collect, table

ENVIRONMENTS = {"binance": "testnet", "kraken": "testnet", "upbit": "live"}
ORDERS = {"binance": dict(symbol="NKN-USDT", quantity=Decimal("100"), price=Decimal("0.30")),
          "upbit": dict(symbol="WAVES-KRW", quantity=Decimal("1"), price=Decimal("10000"))}


def credentials() -> StaticCredentials:
    """The simulator's ``demo`` paper key of binance and upbit, once as a live key
    (account ``live-key``) and once marked testnet (account ``test-key``)."""
    keys = paper_keys()
    table = {}
    for venue in ("binance", "upbit", "kraken"):
        demo = keys[(venue, "demo")]
        table[(venue, "live-key")] = demo
        table[(venue, "test-key")] = msgspec.structs.replace(demo, environment="testnet")
    return StaticCredentials(table)


@asynccontextmanager
async def executors(nats_url: str, simulator: Any) -> AsyncIterator[Observability]:
    """One registered executor replica; binance and upbit point at the simulator, kraken
    (testnet, which it has none of) at nothing."""
    stop, ready = asyncio.Event(), asyncio.Event()
    settings = ExecutorSettings(venue_urls={v: simulator.base_urls[v] for v in ("binance", "upbit")},
                                tracker_interval_s=0.3)
    async with Observability("executor", ObservabilitySettings(host="127.0.0.1", executor_port=0),
                             ready=ready) as observability:
        task = asyncio.create_task(run_executor(observability.connections(lambda: nats.connect(nats_url)), settings,
                                                credentials(), stop, ready=ready, environments=ENVIRONMENTS))
        try:
            await asyncio.wait_for(ready.wait(), 30)
            yield observability
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)


async def test_a_key_is_used_only_on_endpoints_of_its_environment(nats_url, bus, simulator) -> None:
    client = OrderClient(bus)
    async with executors(nats_url, simulator):
        async def place(venue: str, account: str) -> Any:
            return await client.place(venue, account, side="buy", order_type="limit", timeout_s=30,
                                      **ORDERS.get(venue, ORDERS["binance"]))

        live_on_testnet = await place("binance", "live-key")
        testnet_on_testnet = await place("binance", "test-key")
        testnet_on_live = await place("upbit", "test-key")
        live_on_live = await place("upbit", "live-key")
        refused = await client.place("kraken", "test-key", "BTC-USD", "buy", "limit", quantity="0.01", price="10000")
        balance = await client.query("binance", "live-key", BalanceQuery())
        ledger = simulator.ledger_snapshot()

    for event, key, venue in ((live_on_testnet, "live", "binance"), (testnet_on_live, "testnet", "upbit")):
        assert (event.status, event.error) == ("rejected", "auth_error"), event
        assert f"a {key} key" in event.reason and f"[venues.{venue}] environment" in event.reason, event.reason
    assert "Spot Test Network" in live_on_testnet.reason
    assert testnet_on_testnet.status == "accepted" and live_on_live.status == "accepted"
    # only the matching keys reached the venue
    assert sorted(o["client_order_id"] for o in ledger["orders"]) == sorted(
        [testnet_on_testnet.client_order_id, live_on_live.client_order_id])
    assert (refused.status, refused.error) == ("rejected", "invalid_command"), refused
    assert refused.reason.startswith("kraken has no testnet") and "never falls back to live" in refused.reason
    assert isinstance(balance, QueryError) and balance.error == "auth_error"
    for event in (live_on_testnet, testnet_on_live, refused):  # no secret in what goes on the bus
        for creds in paper_keys().values():
            assert creds.secret not in event.reason and creds.api_key not in event.reason


async def test_exbus_status_shows_each_venues_environment(nats_url, bus, simulator) -> None:
    async with executors(nats_url, simulator):
        status = await collect(bus, timeout_s=0.5)
        shown = table(status)
    (replica,) = [r for r in status["services"] if r["service"] == "exbus-executor"]
    assert replica["environments"]["binance"] == "testnet" and replica["environments"]["kraken"] == "testnet"
    assert replica["environments"]["upbit"] == "live" and len(replica["environments"]) == 9
    (row,) = [line for line in shown.splitlines() if line.startswith("exbus-executor")]
    assert "env:testnet=binance,kraken" in row and "env:live=bitfinex,bithumb,coinbase,coinone,korbit,okx,upbit" in row


def test_the_executor_names_each_refused_venue_at_start_up() -> None:
    from structlog.testing import capture_logs

    from services.executor.service import announce_environments

    with capture_logs() as logs:
        announce_environments(ExecutorSettings(venue_urls={"korbit": "http://127.0.0.1:8080"}),
                              {"kraken": "testnet", "korbit": "testnet", "binance": "testnet", "okx": "live"})
    refused = [e for e in logs if e["event"] == "venue refused"]
    assert [e["venue"] for e in refused] == ["kraken"], logs  # korbit: its URL is given (a test server of one's own)
    assert refused[0]["log_level"] == "error" and refused[0]["error"].startswith("kraken has no testnet")
    assert sorted(e["venue"] for e in logs if e["event"] == "venue on its testnet") == ["binance", "korbit"]
