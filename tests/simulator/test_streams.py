"""WebSocket streams: the recorded market streams replayed in a loop, and private streams.

Binance: web-socket-streams.md (``/ws/<stream>`` raw, ``/stream?streams=`` wrapped as
{"stream", "data"}; SUBSCRIBE/LIST_SUBSCRIPTIONS; "How to manage a local order book
correctly": drop events with u <= lastUpdateId, the first has U <= lastUpdateId+1 <= u, then
each U = previous u + 1) on the frames of ../shared/data/recorded/BINANCE.ws.1.0;
the user data of the WebSocket API (userDataStream.subscribe.signature, executionReport;
tested in full by test_private_binance).
Upbit: docs.upbit.com websocket guide (request [ticket, type..., format], binary frames,
SIMPLE/DEFAULT, SNAPSHOT then REALTIME) on UPBIT.ws.62.0; MyOrder on /websocket/v1/private.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

REPLAY = pytest.mark.sim(replay=True, replay_speed=100)
RECORDED_MAX_NKN_U = 499870179  # last depth update id of NKNUSDT in BINANCE.ws.1.0


async def receive_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 5.0) -> Any:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), msg
    return json.loads(msg.data)


@REPLAY
async def test_a_local_book_built_from_snapshot_and_diffs_stays_in_sequence_across_passes(
        sim: Any, session: aiohttp.ClientSession, binance: Any) -> None:
    async with session.ws_connect(sim.binance_ws_url + "/stream?streams=nknusdt@depth@100ms") as ws:
        buffered = [await receive_json(ws)]
        snapshot = (await binance.public("/api/v3/depth", symbol="NKNUSDT", limit=1000)).json
        last = snapshot["lastUpdateId"]
        applied = 0
        while applied < 200 or last <= RECORDED_MAX_NKN_U:  # into the second pass of the recording
            event = buffered.pop(0) if buffered else await receive_json(ws)
            assert event["stream"] == "nknusdt@depth@100ms"
            d = event["data"]
            if d["u"] <= last:
                continue
            assert d["U"] <= last + 1 <= d["u"], (d["U"], d["u"], last)
            last = d["u"]
            applied += 1
    assert last > RECORDED_MAX_NKN_U


@REPLAY
async def test_raw_streams_and_subscribe(sim: Any, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(sim.binance_ws_url + "/ws/nknusdt@bookTicker") as ws:
        first = await receive_json(ws)
        assert set(first) == {"u", "s", "b", "B", "a", "A"} and first["s"] == "NKNUSDT"
        await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["nknusdt@aggTrade"], "id": 1}))
        await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        seen: dict[Any, Any] = {}
        while not {"result-1", "result-2", "aggTrade"} <= set(seen):
            m = await receive_json(ws)
            if "id" in m:
                seen[f"result-{m['id']}"] = m["result"]
            elif m.get("e") == "aggTrade":
                seen["aggTrade"] = m
        assert seen["result-1"] is None
        assert seen["result-2"] == ["nknusdt@aggTrade", "nknusdt@bookTicker"]
        assert seen["aggTrade"]["s"] == "NKNUSDT" and seen["aggTrade"]["p"] == "0.35280000"


async def user_data(session: aiohttp.ClientSession, sim: Any, binance: Any) -> aiohttp.ClientWebSocketResponse:
    """A WebSocket API connection subscribed to the account's user data (signed on the
    simulator's clock); the subscribe's answer is read."""
    ws = await session.ws_connect(sim.binance_ws_url + "/ws-api/v3")
    params: dict[str, Any] = {"apiKey": binance.api_key, "timestamp": binance.clock.ms()}
    params["signature"] = binance.sign(binance.secret, f"apiKey={params['apiKey']}&timestamp={params['timestamp']}")
    await ws.send_json({"id": "u", "method": "userDataStream.subscribe.signature", "params": params})
    while "status" not in (answer := await receive_json(ws)):
        pass
    assert answer["status"] == 200, answer
    return ws


@REPLAY
async def test_upbit_public_stream_snapshot_then_realtime(sim: Any, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(sim.upbit_ws_url + "/websocket/v1") as ws:
        await ws.send_str(json.dumps([{"ticket": "t1"}, {"type": "orderbook", "codes": ["KRW-LAMB.5"]},
                                      {"type": "trade", "codes": ["KRW-LAMB"]}, {"format": "DEFAULT"}]))
        first = await asyncio.wait_for(ws.receive(), 5)
        assert first.type == aiohttp.WSMsgType.BINARY  # Upbit sends binary frames
        frames = [json.loads(first.data)] + [await receive_json(ws) for _ in range(40)]
    book = frames[0]
    assert (book["type"], book["code"], book["stream_type"], len(book["orderbook_units"])) == \
        ("orderbook", "KRW-LAMB", "SNAPSHOT", 5)
    realtime = [f for f in frames if f["stream_type"] == "REALTIME"]
    assert {f["type"] for f in realtime} == {"orderbook", "trade"} and {f["code"] for f in realtime} == {"KRW-LAMB"}
    trade = next(f for f in realtime if f["type"] == "trade")
    assert set(trade) >= {"trade_price", "trade_volume", "ask_bid", "sequential_id", "trade_timestamp"}


@REPLAY
async def test_upbit_simple_format(sim: Any, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(sim.upbit_ws_url + "/websocket/v1") as ws:
        await ws.send_str(json.dumps([{"ticket": "t2"}, {"type": "trade", "codes": ["KRW-LAMB"], "isOnlyRealtime": True},
                                      {"format": "SIMPLE"}]))
        trade = await receive_json(ws)
    assert (trade["ty"], trade["cd"], trade["st"]) == ("trade", "KRW-LAMB", "REALTIME")
    assert {"tp", "tv", "ab", "sid", "ttms"} <= set(trade)


async def test_upbit_stream_request_errors(sim: Any, session: aiohttp.ClientSession) -> None:
    async with session.ws_connect(sim.upbit_ws_url + "/websocket/v1") as ws:
        await ws.send_str(json.dumps([{"type": "trade", "codes": ["KRW-LAMB"]}]))
        assert (await receive_json(ws))["error"]["name"] == "NO_TICKET"
        await ws.send_str("not json")
        assert (await receive_json(ws))["error"]["name"] == "WRONG_FORMAT"
        await ws.send_str("PING")
        assert await receive_json(ws) == {"status": "UP"}


async def test_upbit_private_stream_reports_my_orders(sim: Any, session: aiohttp.ClientSession, upbit: Any) -> None:
    token = upbit.token(upbit.access_key, upbit.secret)
    async with session.ws_connect(sim.upbit_ws_url + "/websocket/v1/private",
                                  headers={"Authorization": f"Bearer {token}"}) as ws:
        await ws.send_str(json.dumps([{"ticket": "p1"}, {"type": "myOrder", "codes": ["KRW-LAMB"]}]))
        await asyncio.wait_for(sim.upbit.hub.subscribed("user:alice"), 5)  # Upbit does not acknowledge
        placed = (await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="127",
                                    ord_type="limit", identifier="ws-1")).json
        events = [await receive_json(ws) for _ in range(3)]
    assert [e["state"] for e in events] == ["wait", "trade", "done"]
    assert {e["uuid"] for e in events} == {placed["uuid"]} and events[1]["identifier"] == "ws-1"
    assert (events[1]["price"], events[1]["volume"], events[1]["is_maker"], events[1]["ask_bid"]) == (127.0, 100.0, False, "BID")


async def test_upbit_private_stream_needs_a_token(sim: Any, session: aiohttp.ClientSession) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as e:
        await session.ws_connect(sim.upbit_ws_url + "/websocket/v1/private")
    assert e.value.status == 401


async def test_the_replayed_market_fills_a_resting_order(sim: Any, session: aiohttp.ClientSession, binance: Any) -> None:
    """A sell resting inside the recorded spread (0.3521 / 0.3525) is reached once the replay of
    NKNUSDT starts (its bids rise to 0.3527), and fills as a maker at its own price."""
    async with await user_data(session, sim, binance) as ws:
        placed = await binance.order(symbol="NKNUSDT", side="SELL", type="LIMIT", timeInForce="GTC", quantity="100",
                                     price="0.3523", newClientOrderId="resting-1")
        assert placed.json["status"] == "NEW"
        sim.binance.start_replay(100)  # the market starts moving only now: the order surely rested first
        while True:
            event = (await receive_json(ws, timeout=10)).get("event", {})
            if event.get("x") == "TRADE":
                break
    assert (event["c"], event["m"], event["L"]) == ("resting-1", True, "0.35230000")
