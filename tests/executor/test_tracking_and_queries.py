"""Order tracking (a resting order filled later produces a ``filled`` event) and queries
over request/reply served by the executors' queue group."""

from __future__ import annotations

import time
from decimal import Decimal

import nats

import schemas
from schemas import PlaceOrder, subjects
from schemas.queries import BalanceQuery, OrderStatusQuery, QueryReply, TickerQuery, TradeHistoryQuery
from schemas.vault import Credentials
from services.simulator import Simulator
from services.simulator.config import sim_config
from services.venues import rest_adapter
from services.venues.http import HttpTransport

from .conftest import fleet, publish


async def test_a_resting_order_filled_later_is_reported_by_the_tracker(nats_url, bus, event_log) -> None:
    base = sim_config({})
    demo = base.binance.accounts[0]
    taker = {"name": "taker", "api_key": "sim-taker-key", "secret": "sim-taker-secret-" + "1" * 40,
             "balances": {"NKN": "100000", "USDT": "100000"}}
    accounts = [{"name": demo.name, "api_key": demo.api_key, "secret": demo.secret,
                 "balances": {k: str(v) for k, v in demo.balances.items()}}, taker]
    async with Simulator({"replay": False, "binance": {"accounts": accounts}}) as sim:
        venue = rest_adapter("binance", sim.binance_url)
        async with HttpTransport() as http:
            book = venue.parse_response("orderbook", 200, {}, (await http.send(venue.build_request(
                "orderbook", schemas.OrderBookQuery(symbol="NKN-USDT", depth=5), None, 0), idempotent=True)).body,
                schemas.OrderBookQuery(symbol="NKN-USDT", depth=5))
            price = book.bids[0].price + Decimal("0.0001")  # best bid: rests, first in line
            order = PlaceOrder(command_id="rest-1", venue="binance", account="demo", symbol="NKN-USDT",
                               client_order_id="rest-1", side="buy", order_type="limit", quantity=Decimal("50"), price=price)
            async with fleet(nats_url, sim):
                await publish(bus.jetstream(), order)
                await event_log.wait(lambda ev: any(e.status == "accepted" for e in ev))
                sell = PlaceOrder(command_id="t1", venue="binance", account="taker", symbol="NKN-USDT", client_order_id="taker-1",
                                  side="sell", order_type="market", quantity=Decimal("50"))
                req = venue.build_request("place_order", sell, Credentials(api_key=taker["api_key"], secret=taker["secret"]),
                                          time.time_ns() // 1_000_000)
                assert (await http.send(req, idempotent=False)).status == 200
                events = await event_log.wait(lambda ev: any(e.status == "filled" for e in ev))
    filled = [e for e in events if e.status == "filled"]
    assert len(filled) == 1 and filled[0].client_order_id == "rest-1" and filled[0].filled_quantity == Decimal("50")
    assert [e.status for e in events if e.client_order_id == "rest-1"] == ["accepted", "filled"]


async def test_queries_are_answered_by_the_fleet(nats_url, bus, simulator) -> None:
    nc = await nats.connect(nats_url)
    async with fleet(nats_url, simulator, replicas=2):
        async def ask(subject: str, query) -> object:
            msg = await nc.request(subject, schemas.encode(query), timeout=10)
            return schemas.decode(msg.data, QueryReply)

        balance = await ask(subjects.query("binance", "demo", "balance"), BalanceQuery())
        assert any(b.asset == "USDT" and b.free > 0 for b in balance.balances)
        ticker = await ask(subjects.public_query("upbit", "ticker"), TickerQuery(symbol="WAVES-KRW"))
        assert ticker.ticker.venue == "upbit" and ticker.ticker.last is not None
        missing = await ask(subjects.query("binance", "demo", "order_status"), OrderStatusQuery(symbol="NKN-USDT", client_order_id="nope"))
        assert missing.error == "order_not_found"
        no_keys = await ask(subjects.query("binance", "other", "balance"), BalanceQuery())
        assert no_keys.error == "auth_error"
        korbit = await ask(subjects.query("korbit", "demo", "balance"), BalanceQuery())  # the simulator speaks Korbit too
        assert any(b.asset == "KRW" and b.free > 0 for b in korbit.balances)
        unsupported = await ask(subjects.query("upbit", "demo", "trade_history"), TradeHistoryQuery(symbol="LAMB-KRW"))
        assert unsupported.error == "invalid_command" and "trade_history" in unsupported.message  # Upbit has none
        wrong = await ask(subjects.query("binance", "demo", "balance"), TickerQuery(symbol="NKN-USDT"))
        assert wrong.error == "invalid_command"
    await nc.close()
