"""Fault injection: each mode, counts and ratios, and changing faults at run time.

Binance's 5xx body follows errors.md (-1008 "Server is currently overloaded..."); the
docs warn a 5xx means "the execution status is UNKNOWN and could have been a success",
which is what ``when: after`` simulates. Book: NKNUSDT from BINANCE.http.0.0.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from services.simulator import Simulator

REST = {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100", "price": "0.3500"}


def fault(**kw: Any) -> Any:
    return pytest.mark.sim(faults=[kw])


@fault(kind="error_5xx", status=503)
async def test_5xx_before_processing_places_nothing(binance: Any, read_ledger: Any) -> None:
    reply = await binance.order(**REST, newClientOrderId="f-1")
    assert (reply.status, reply.json["code"]) == (503, -1008)
    assert (await read_ledger())["orders"] == []
    assert (await binance.public("/api/v3/ping")).status == 200  # only order placement is faulty


@fault(kind="error_5xx", status=500, when="after")
async def test_5xx_after_processing_leaves_an_order_the_client_does_not_know_of(binance: Any, read_ledger: Any) -> None:
    reply = await binance.order(**REST, newClientOrderId="f-2")
    assert (reply.status, reply.json["code"]) == (500, -1001)
    (order,) = (await read_ledger())["orders"]
    assert (order["client_order_id"], order["outcome"], order["response"]) == ("f-2", "new", "error_5xx")
    found = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "f-2"})
    assert found.json["status"] == "NEW"  # reconciliation by client order id finds it


@fault(kind="timeout")
async def test_timeout_accepts_the_order_and_never_answers(sim: Simulator, binance: Any, read_ledger: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await binance.signed("POST", "/api/v3/order", REST | {"newClientOrderId": "f-3"}, timeout=0.5)
    await asyncio.wait_for(sim.ledger.orders_at_least(1), 5)  # the client gave up; the venue took the order
    (order,) = (await read_ledger())["orders"]
    assert (order["client_order_id"], order["response"]) == ("f-3", "timeout")
    found = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "f-3"})
    assert (found.status, found.json["status"]) == (200, "NEW")


@fault(kind="drop")
async def test_drop_closes_the_connection_after_accepting(binance: Any, read_ledger: Any) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await binance.order(**REST, newClientOrderId="f-4")
    (order,) = (await read_ledger())["orders"]
    assert (order["client_order_id"], order["response"]) == ("f-4", "dropped")


@fault(kind="malformed")
async def test_malformed_body_after_accepting(binance: Any, read_ledger: Any) -> None:
    reply = await binance.order(**REST, newClientOrderId="f-5")
    assert reply.status == 200 and reply.json is None and reply.raw.startswith(b'{"symbol":"NKNUSDT"')
    assert reply.headers["X-MBX-ORDER-COUNT-10S"] == "1"  # the usage headers still come
    assert (await read_ledger())["orders"][0]["response"] == "malformed"


@fault(kind="latency", latency_ms=60_000, route="*")
async def test_latency_delays_the_answer(binance: Any, read_ledger: Any) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await binance.raw("GET", "/api/v3/ping", timeout=0.3)
    assert (await read_ledger())["orders"] == []


@fault(kind="drop", count=1)
async def test_count_limits_how_often_a_fault_fires(binance: Any, sim: Simulator, session: Any) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await binance.order(**REST)
    assert (await binance.order(**REST)).status == 200
    async with session.get(sim.binance_url + "/__sim/config") as r:
        (rule,) = (await r.json())["faults"]
    assert (rule["kind"], rule["fired"], rule["count"]) == ("drop", 1, 1)


@pytest.mark.sim(faults=[{"kind": "error_5xx", "ratio": 0.5, "route": "/api/v3/ping"}], seed=7)
async def test_ratio_faults_some_requests_not_all(binance: Any) -> None:
    statuses = [(await binance.public("/api/v3/ping")).status for _ in range(40)]
    assert 0 < statuses.count(503) < 40 and set(statuses) == {200, 503}


@fault(kind="timeout", venue="upbit")
async def test_faults_by_venue(sim: Simulator, binance: Any, upbit: Any, read_ledger: Any) -> None:
    assert (await binance.order(**REST)).status == 200
    with pytest.raises(asyncio.TimeoutError):
        await upbit.request("POST", "/v1/orders", body={"market": "KRW-LAMB", "side": "bid", "volume": "100",
                                                         "price": "120", "ord_type": "limit", "identifier": "u-1"},
                            timeout=0.5)
    await asyncio.wait_for(sim.ledger.orders_at_least(2), 5)
    orders = {o["venue"]: o for o in (await read_ledger())["orders"]}
    assert (orders["binance"]["response"], orders["upbit"]["response"]) == ("answered", "timeout")
    found = await upbit.request("GET", "/v1/order", params={"identifier": "u-1"})
    assert found.json["state"] == "wait"


async def test_faults_change_at_run_time(binance: Any, sim: Simulator, session: Any) -> None:
    assert (await binance.order(**REST)).status == 200
    async with session.post(sim.upbit_url + "/__sim/config",  # either port controls the whole simulator
                            json={"faults": [{"kind": "error_5xx", "route": "POST /api/v3/order"}]}) as r:
        assert r.status == 200
    assert (await binance.order(**REST)).status == 503
    async with session.post(sim.binance_url + "/__sim/config", json={"faults": []}) as r:
        assert (await r.json()) == {"faults": []}
    assert (await binance.order(**REST)).status == 200
    async with session.post(sim.binance_url + "/__sim/config", json={"faults": [{"kind": "explode"}]}) as r:
        assert r.status == 400


@fault(kind="error_5xx", route="cancel")
async def test_cancel_route_faults(binance: Any) -> None:
    assert (await binance.order(**REST, newClientOrderId="c-1")).status == 200
    reply = await binance.signed("DELETE", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "c-1"})
    assert reply.status == 503
    still = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "c-1"})
    assert still.json["status"] == "NEW"
