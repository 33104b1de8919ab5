"""Rate-limit headers, 429, and the 418 ban for clients that do not back off.

Binance (rest-api.md LIMITS): ``X-MBX-USED-WEIGHT-1M`` on every response with the
endpoints' documented weights; ``X-MBX-ORDER-COUNT-10S/1D`` on successful orders; 429
(-1003) with ``Retry-After``; "failing to back off after receiving 429s will result in an
automated IP ban (HTTP status 418)", bans "from 2 minutes to 3 days"; the unfilled order
count (-1015, no Retry-After) and its decrement on first fill (faqs/order_count_decrement.md).
Upbit (docs.upbit.com rate-limits): ``Remaining-Req: group=...; min=...; sec=...`` per group,
429 over the limit, 418 when it goes on; quotation per IP, exchange per account.
The manual clock starts 1 s into a minute (conftest START_NS).
"""

from __future__ import annotations

from typing import Any

import pytest

REST = {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100", "price": "0.3500"}


def used(reply: Any) -> int:
    return int(reply.headers["X-MBX-USED-WEIGHT-1M"])


async def test_used_weight_follows_the_documented_weights(binance: Any, clock: Any) -> None:
    steps = [
        (binance.public("/api/v3/ping"), 1),
        (binance.public("/api/v3/depth", symbol="NKNUSDT"), 5),             # limit 100 (default)
        (binance.public("/api/v3/depth", symbol="NKNUSDT", limit=500), 25),
        (binance.public("/api/v3/depth", symbol="NKNUSDT", limit=1000), 50),
        (binance.public("/api/v3/exchangeInfo", symbol="NKNUSDT"), 20),
        (binance.public("/api/v3/ticker/24hr", symbol="NKNUSDT"), 2),
        (binance.public("/api/v3/ticker/bookTicker", symbol="NKNUSDT"), 2),
        (binance.signed("GET", "/api/v3/account"), 20),
        (binance.order(**REST), 1),
        (binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "orderId": 1}), 4),
        (binance.signed("GET", "/api/v3/openOrders", {"symbol": "NKNUSDT"}), 6),
        (binance.signed("GET", "/api/v3/openOrders"), 80),
        (binance.signed("GET", "/api/v3/myTrades", {"symbol": "NKNUSDT"}), 20),
    ]
    total = 0
    for call, weight in steps:
        reply = await call
        total += weight
        assert (reply.status, used(reply)) == (200, total), reply
    clock.advance(59)  # the next minute: a fresh window
    assert used(await binance.public("/api/v3/ping")) == 1


async def test_order_count_headers_count_unfilled_orders(binance: Any, clock: Any) -> None:
    for n in (1, 2):
        reply = await binance.order(**REST)
        assert (reply.headers["X-MBX-ORDER-COUNT-10S"], reply.headers["X-MBX-ORDER-COUNT-1D"]) == (str(n), str(n))
    clock.advance(9)  # next 10 s window, same day
    reply = await binance.order(**REST)
    assert (reply.headers["X-MBX-ORDER-COUNT-10S"], reply.headers["X-MBX-ORDER-COUNT-1D"]) == ("1", "3")
    taker = await binance.order(**(REST | {"price": "0.3525"}))  # fills on arrival: counted, then credited back
    assert taker.json["status"] == "FILLED"
    assert (taker.headers["X-MBX-ORDER-COUNT-10S"], taker.headers["X-MBX-ORDER-COUNT-1D"]) == ("1", "3")
    refused = await binance.order(**(REST | {"quantity": "1.5"}))
    assert refused.status == 400 and "X-MBX-ORDER-COUNT-10S" not in refused.headers


@pytest.mark.sim(binance={"limits": {"orders_10s": 3}})
async def test_too_many_new_orders(binance: Any, clock: Any, read_ledger: Any) -> None:
    for _ in range(3):
        assert (await binance.order(**REST)).status == 200
    reply = await binance.order(**REST)
    assert (reply.status, reply.json) == (429, {"code": -1015, "msg": "Too many new orders; current limit is 3 orders per 10 SECOND."})
    assert "Retry-After" not in reply.headers
    clock.advance(9)
    assert (await binance.order(**REST)).status == 200
    usage = (await read_ledger())["limits"]["binance"]["account:alice"]["windows"]["ORDERS_10S"]
    assert (usage["max_used"], usage["exceeded"], usage["limit"]) == (3, 1, 3)


@pytest.mark.sim(binance={"limits": {"request_weight_1m": 10}}, ban={"requests_after_429": 2})
async def test_429_then_418_when_the_client_keeps_going(binance: Any, clock: Any, read_ledger: Any) -> None:
    for _ in range(10):
        assert (await binance.public("/api/v3/ping")).status == 200
    limited = await binance.public("/api/v3/ping")
    assert limited.status == 429 and limited.json["code"] == -1003
    assert limited.json["msg"].startswith("Too much request weight used; current limit is 10 request weight per 1 MINUTE.")
    assert limited.headers["Retry-After"] == "59"  # to the end of the minute
    for _ in range(2):  # still told to back off: 429 again
        assert (await binance.public("/api/v3/ping")).status == 429
    banned = await binance.public("/api/v3/ping")
    assert (banned.status, banned.json["code"], banned.headers["Retry-After"]) == (418, -1003, "120")
    assert banned.json["msg"].startswith("Way too much request weight used; IP banned until ")
    clock.advance(30)
    assert (await binance.public("/api/v3/ping")).headers["Retry-After"] == "90"
    clock.advance(90)  # ban over, new window
    assert (await binance.public("/api/v3/ping")).status == 200
    for _ in range(9):
        await binance.public("/api/v3/ping")
    for _ in range(3):
        await binance.public("/api/v3/ping")
    second_ban = await binance.public("/api/v3/ping")
    assert (second_ban.status, second_ban.headers["Retry-After"]) == (418, "240")  # repeat offender: longer
    ip = (await read_ledger())["limits"]["binance"]["ip:127.0.0.1"]
    assert (ip["bans"], ip["exceeded"]) == (2, True)


@pytest.mark.sim(binance={"limits": {"request_weight_1m": 10}}, ban={"requests_after_429": 2})
async def test_a_client_that_waits_retry_after_is_not_banned(binance: Any, clock: Any) -> None:
    for _ in range(10):
        await binance.public("/api/v3/ping")
    limited = await binance.public("/api/v3/ping")
    clock.advance(int(limited.headers["Retry-After"]))
    for _ in range(10):
        assert (await binance.public("/api/v3/ping")).status == 200


async def test_weight_is_per_ip_and_reported_per_key(binance: Any, binance_b: Any, read_ledger: Any) -> None:
    await binance.signed("GET", "/api/v3/account")
    reply = await binance_b.signed("GET", "/api/v3/account")
    assert used(reply) == 40  # both keys draw on the same IP's weight
    limits = (await read_ledger())["limits"]["binance"]
    assert limits["ip:127.0.0.1"]["windows"]["REQUEST_WEIGHT_1M"]["used"] == 40
    assert limits["account:alice"]["windows"]["REQUEST_WEIGHT_1M"]["used"] == 20
    assert limits["account:bob"]["windows"]["REQUEST_WEIGHT_1M"]["used"] == 20
    assert (await read_ledger())["limits_exceeded"] is False


@pytest.mark.sim(upbit={"rate_limits": {"default": 3, "order": 2, "ticker": 2}})
async def test_upbit_remaining_req_per_group(upbit: Any, upbit_b: Any, clock: Any) -> None:
    secs = []
    for _ in range(3):
        reply = await upbit.request("GET", "/v1/accounts")
        secs.append(reply.headers["Remaining-Req"])
    assert secs == ["group=default; min=1800; sec=2", "group=default; min=1800; sec=1", "group=default; min=1800; sec=0"]
    over = await upbit.request("GET", "/v1/accounts")
    assert (over.status, over.json["error"]["name"]) == (429, "too_many_requests")
    other = await upbit_b.request("GET", "/v1/accounts")  # exchange limits are per account
    assert (other.status, other.headers["Remaining-Req"]) == (200, "group=default; min=1800; sec=2")
    order = await upbit_b.order(market="KRW-LAMB", side="bid", volume="100", price="120", ord_type="limit")
    assert order.headers["Remaining-Req"] == "group=order; min=1800; sec=1"
    t = await upbit.public("/v1/ticker", markets="KRW-LAMB")
    assert t.headers["Remaining-Req"] == "group=ticker; min=1800; sec=1"  # quotation: per IP
    clock.advance(1)
    assert (await upbit.request("GET", "/v1/accounts")).status == 200


@pytest.mark.sim(upbit={"rate_limits": {"ticker": 2}}, ban={"requests_after_429": 1})
async def test_upbit_429_then_418(upbit: Any, clock: Any, read_ledger: Any) -> None:
    for _ in range(2):
        assert (await upbit.public("/v1/ticker", markets="KRW-LAMB")).status == 200
    limited = await upbit.public("/v1/ticker", markets="KRW-LAMB")
    assert (limited.status, limited.json["error"]["name"]) == (429, 429)  # quotation errors carry the status as name
    assert (await upbit.public("/v1/ticker", markets="KRW-LAMB")).status == 429
    blocked = await upbit.public("/v1/ticker", markets="KRW-LAMB")
    assert (blocked.status, blocked.headers["Retry-After"]) == (418, "120")
    usage = (await read_ledger())["limits"]["upbit"]["ip:127.0.0.1"]
    assert (usage["windows"]["ticker"]["max_used"], usage["status_429"], usage["status_418"]) == (4, 2, 1)
