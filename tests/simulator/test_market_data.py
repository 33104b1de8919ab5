"""Public market data served from the recordings in ../shared/data/recorded:
BINANCE.0 (/api/v3/exchangeInfo), BINANCE.http.0.0 (/api/v3/depth snapshots), BINANCE.ws.1.0
(kline/aggTrade seeding /api/v3/ticker/24hr), UPBIT.0 (/v1/market/all) and UPBIT.ws.62.0
(orderbook and trade frames behind /v1/orderbook and /v1/ticker). Replay is off: the books
are the recorded ones."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from services.simulator.recorded import load_binance, load_upbit


def recorded_depth(shared_data: Path, symbol: str) -> dict[str, Any]:
    for line in (shared_data / "recorded" / "BINANCE.http.0.0").read_text().splitlines():
        if f"symbol={symbol}&" in line:
            return json.loads(line.split(": ", 1)[1])
    raise AssertionError(symbol)


async def test_depth_is_the_recorded_snapshot(binance: Any, shared_data: Path) -> None:
    recorded = recorded_depth(shared_data, "BLZETH")
    reply = await binance.public("/api/v3/depth", symbol="BLZETH", limit=1000)
    assert reply.json["lastUpdateId"] == recorded["lastUpdateId"] == 281916627
    assert reply.json["bids"] == recorded["bids"][:1000] and reply.json["asks"] == recorded["asks"][:1000]
    five = (await binance.public("/api/v3/depth", symbol="BLZETH", limit=5)).json
    assert five["bids"] == recorded["bids"][:5]


async def test_exchange_info_is_the_recorded_one_with_the_limits_in_force(binance: Any, shared_data: Path) -> None:
    recorded = load_binance(shared_data / "recorded").exchange_info
    info = (await binance.public("/api/v3/exchangeInfo")).json
    assert [s["symbol"] for s in info["symbols"]] == [s["symbol"] for s in recorded["symbols"]]
    assert {(r["rateLimitType"], r["interval"], r["intervalNum"], r["limit"]) for r in info["rateLimits"]} == {
        ("REQUEST_WEIGHT", "MINUTE", 1, 6000), ("ORDERS", "SECOND", 10, 100), ("ORDERS", "DAY", 1, 200000),
        ("RAW_REQUESTS", "MINUTE", 5, 300000)}
    one = (await binance.public("/api/v3/exchangeInfo", symbol="NKNUSDT")).json
    assert [s["symbol"] for s in one["symbols"]] == ["NKNUSDT"]
    some = (await binance.public("/api/v3/exchangeInfo", symbols='["NKNUSDT","BLZETH"]')).json
    assert [s["symbol"] for s in some["symbols"]] == ["NKNUSDT", "BLZETH"]


async def test_unknown_symbol(binance: Any) -> None:
    reply = await binance.public("/api/v3/depth", symbol="NOPE")
    assert (reply.status, reply.json) == (400, {"code": -1121, "msg": "Invalid symbol."})


async def test_server_time_is_the_simulators_clock(binance: Any, clock: Any) -> None:
    assert (await binance.public("/api/v3/time")).json == {"serverTime": clock.ms()}


async def test_tickers(binance: Any) -> None:
    """24hr statistics seeded from the recorded kline_1m of NKNUSDT (o 0.3527 h 0.3528 l 0.3522 c 0.3528,
    v 25877, n 30); book ticker from the recorded depth snapshot."""
    t = (await binance.public("/api/v3/ticker/24hr", symbol="NKNUSDT")).json
    assert (t["openPrice"], t["highPrice"], t["lowPrice"], t["lastPrice"]) == \
        ("0.35270000", "0.35280000", "0.35220000", "0.35280000")
    assert (t["volume"], t["count"], t["bidPrice"], t["askPrice"]) == ("25877.00000000", 30, "0.35210000", "0.35250000")
    b = (await binance.public("/api/v3/ticker/bookTicker", symbol="NKNUSDT")).json
    assert b == {"symbol": "NKNUSDT", "bidPrice": "0.35210000", "bidQty": "672.00000000",
                 "askPrice": "0.35250000", "askQty": "3959.00000000"}
    both = (await binance.public("/api/v3/ticker/bookTicker", symbols='["NKNUSDT","LRCBTC"]')).json
    assert [x["symbol"] for x in both] == ["NKNUSDT", "LRCBTC"]


async def test_upbit_markets_are_the_recorded_list(upbit: Any, shared_data: Path) -> None:
    recorded = load_upbit(shared_data / "recorded").markets
    reply = await upbit.public("/v1/market/all")
    assert reply.json == recorded
    assert reply.headers["Remaining-Req"].startswith("group=market;")


async def test_upbit_orderbook_is_the_last_recorded_frame(upbit: Any, shared_data: Path) -> None:
    frames = [f.payload for f in load_upbit(shared_data / "recorded").frames
              if f.payload["ty"] == "orderbook" and f.payload["cd"] == "KRW-WAVES"]
    last = frames[-1]
    (book,) = (await upbit.public("/v1/orderbook", markets="KRW-WAVES")).json
    assert book["market"] == "KRW-WAVES"
    assert [(D(str(u["ask_price"])), D(str(u["ask_size"])), D(str(u["bid_price"])), D(str(u["bid_size"])))
            for u in book["orderbook_units"]] == [(u["ap"], u["as"], u["bp"], u["bs"]) for u in last["obu"]]
    assert isinstance(book["orderbook_units"][0]["ask_price"], float)  # Upbit quotes are JSON numbers


async def test_upbit_ticker_follows_the_recorded_trades(upbit: Any, shared_data: Path) -> None:
    trades = [f.payload for f in load_upbit(shared_data / "recorded").frames
              if f.payload["ty"] == "trade" and f.payload["cd"] == "KRW-WAVES"]
    (t,) = (await upbit.public("/v1/ticker", markets="KRW-WAVES")).json
    assert D(str(t["trade_price"])) == trades[-1]["tp"]
    assert D(str(t["prev_closing_price"])) == trades[0]["pcp"]
    assert t["change"] == "FALL"  # 20230 against a previous close of 21420
    assert D(str(t["acc_trade_volume"])) == sum(x["tv"] for x in trades)


async def test_upbit_unknown_market(upbit: Any) -> None:
    reply = await upbit.public("/v1/orderbook", markets="KRW-NOPE")
    assert (reply.status, reply.json) == (404, {"error": {"name": 404, "message": "Code not found"}})


async def test_the_shared_fixture_has_working_paper_accounts(simulator: Any, session: Any) -> None:
    """tests/conftest.py's ``simulator``: default accounts (config.py), both venues reachable."""
    import hashlib
    import hmac
    import uuid

    import jwt

    from services.simulator.config import SimConfig

    defaults = SimConfig()
    b, u = defaults.binance.accounts[0], defaults.upbit.accounts[0]
    query = f"timestamp={simulator.clock() // 1_000_000}"
    query += "&signature=" + hmac.new(b.secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    async with session.get(f"{simulator.binance_url}/api/v3/account?{query}", headers={"X-MBX-APIKEY": b.api_key}) as r:
        assert r.status == 200 and {x["asset"] for x in (await r.json())["balances"]} >= {"USDT", "BTC"}
    token = jwt.encode({"access_key": u.api_key, "nonce": str(uuid.uuid4())}, u.secret, algorithm="HS512")
    async with session.get(simulator.upbit_url + "/v1/accounts", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200 and {x["currency"] for x in await r.json()} >= {"KRW", "BTC"}
