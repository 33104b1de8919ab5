"""GET /__sim/ledger: every accepted order with its ids, time and outcome, every refused
order, and per-scope rate-limit usage. Book: NKNUSDT from ../shared/data/recorded/BINANCE.http.0.0;
KRW-LAMB from UPBIT.ws.62.0."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from services.simulator import Simulator
from services.simulator.server import VENUES

REST = {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100", "price": "0.3500"}


@pytest.mark.sim(faults=[{"kind": "timeout", "count": 1, "venue": "binance"}])
async def test_the_ledger_tells_what_happened_to_every_order(sim: Simulator, binance: Any, upbit: Any, clock: Any,
                                                             read_ledger: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):  # accepted, never answered
        await binance.signed("POST", "/api/v3/order", REST | {"newClientOrderId": "lost-1"}, timeout=0.5)
    await asyncio.wait_for(sim.ledger.orders_at_least(1), 5)
    clock.advance(1)
    await binance.order(**(REST | {"price": "0.3525"}), newClientOrderId="filled-1")
    await binance.order(**REST, newClientOrderId="lost-1")  # the blind re-send: refused while the first is open
    await binance.signed("DELETE", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "lost-1"})
    await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="120", ord_type="limit", identifier="u-1")
    ledger = await read_ledger()
    orders = [(o["venue"], o["account"], o["symbol"], o["client_order_id"], o["outcome"], o["response"], o["fills"])
              for o in ledger["orders"]]
    assert orders == [
        ("binance", "alice", "NKNUSDT", "lost-1", "canceled", "timeout", 0),
        ("binance", "alice", "NKNUSDT", "filled-1", "filled", "answered", 1),
        ("upbit", "alice", "KRW-LAMB", "u-1", "new", "answered", 0),
    ]
    first, second, third = ledger["orders"]
    assert first["ts"] == clock.now_ns - 1_000_000_000 and second["ts"] == clock.now_ns
    assert (first["order_id"], second["order_id"]) == ("1", "2") and len(third["order_id"]) == 36  # Upbit uuid
    assert [(r["venue"], r["client_order_id"], r["error"]) for r in ledger["rejected"]] == [("binance", "lost-1", "-2010")]
    # one order per client order id reached the book at a time: exactly-once is checkable
    assert sum(1 for o in ledger["orders"] if o["client_order_id"] == "lost-1") == 1


async def test_the_ledger_reports_usage_per_scope(binance: Any, binance_b: Any, upbit: Any, read_ledger: Any) -> None:
    await binance.order(**REST)
    await binance_b.signed("GET", "/api/v3/account")
    await upbit.request("GET", "/v1/accounts")
    await upbit.public("/v1/ticker", markets="KRW-LAMB")
    limits = (await read_ledger())["limits"]
    assert set(limits) == set(VENUES)  # every venue served reports its scopes
    assert not any(limits[v] for v in VENUES if v not in ("binance", "upbit")), "venues nobody called have no scopes"
    assert set(limits["binance"]) == {"ip:127.0.0.1", "account:alice", "account:bob"}
    assert set(limits["upbit"]) == {"ip:127.0.0.1", "account:alice"}
    alice = limits["binance"]["account:alice"]
    assert alice["requests"] == 1 and alice["windows"]["ORDERS_10S"] == {
        "limit": 100, "interval_s": 10, "used": 1, "max_used": 1, "exceeded": 0, "enforced": True}
    assert limits["binance"]["ip:127.0.0.1"]["windows"]["REQUEST_WEIGHT_1M"]["max_used"] == 21
    assert limits["upbit"]["account:alice"]["windows"]["default"]["max_used"] == 1
    assert limits["upbit"]["ip:127.0.0.1"]["windows"]["ticker"]["max_used"] == 1
    assert all(not scope["exceeded"] for venue in limits.values() for scope in venue.values())


async def test_the_python_api_gives_the_same_ledger(sim: Simulator, binance: Any, read_ledger: Any) -> None:
    await binance.order(**REST, newClientOrderId="api-1")
    assert sim.ledger_snapshot() == await read_ledger()
