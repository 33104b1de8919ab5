"""Bitfinex's authenticated account channel (ws/2, chanId 0): exbus's adapter on the published
examples, and against the simulator (auth, os, fills, cancel, refusals) as the executor drives it.

Sources:
- docs.bitfinex.com "Authenticated Channels" (docs/ws-auth): the auth recipe (authPayload = "AUTH" +
  nonce, authSig = hex HMAC-SHA384(secret, authPayload)), ``dms``, channel filters;
- "General" (docs/ws-general): ping/pong example, info codes 20051/20060/20061, error shape;
- "Orders" (reference/ws-auth-orders): the ``os`` example copied below (``{meta_object}`` as ``{}``);
  its ``oc`` example as far as the page shows it (ID, CID, SYMBOL, MTS_CREATE, MTS_UPDATE, AMOUNT,
  AMOUNT_ORIG, ORDER_TYPE), completed with STATUS CANCELED and the os example's other fields;
- "Trades" (reference/ws-auth-trades): the ``tu`` example (402088407, tETHUST, fee -0.061668 USD, CID
  1234) and its ``te`` (FEE and FEE_CURRENCY null);
- ccxt pro bitfinex.py (4.5.90) comments: the ``on`` limit-order and EXECUTED market-order rows, the
  te/tu pair of that order, and the auth OK answer;
- bitfinexcom/bitfinex-api-node ws tests: ``{"event":"auth","status":"FAILED","chanId":0,"code":10100,
  "msg":"apikey: invalid"}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any, AsyncIterator

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from schemas.vault import Credentials
from services.executor.credentials import paper_keys
from services.simulator import Simulator
from services.simulator.venue import encode
from services.venues import rest_adapter
from services.venues.bitfinex.private import BitfinexPrivateStream
from services.venues.bitfinex.rest import venue_cid
from services.venues.http import HttpTransport
from services.venues.privatews import OrderUpdate, StreamReady, private_stream
from services.venues.wsbase import KeepAlive, VenueNotice

from .private_probe import Probe, Trader, next_nonce, open_probe

SYMBOL = "TESTBTC-TESTUSD"
DEMO = paper_keys()[("bitfinex", "demo")]
REST = rest_adapter("bitfinex")
MS = 1_000_000

DOCS_OS = ('[0,"os",[[34930659963,null,1574955083558,"tETHUSD",1574955083558,1574955083573,0.201104,0.201104,'
           '"EXCHANGE LIMIT",null,null,null,0,"ACTIVE",null,null,120,0,0,0,null,null,null,0,0,null,null,null,"BFX",'
           'null,null,{}]]]')
DOCS_OC = ('[0,"oc",[34930659963,null,1574955083558,"tETHUSD",1574955083558,1574955354487,0.201104,0.201104,'
           '"EXCHANGE LIMIT",null,null,null,0,"CANCELED",null,null,120,0,0,0,null,null,null,0,0,null,null,null,"BFX",'
           'null,null,{}]]')
DOCS_TE = '[0,"te",[402088407,"tETHUST",1574963975602,34938060782,-0.2,153.57,"MARKET",0,-1,null,null,1234]]'
DOCS_TU = '[0,"tu",[402088407,"tETHUST",1574963975602,34938060782,-0.2,153.57,"MARKET",0,-1,-0.061668,"USD",1234]]'
DOCS_PONG = '{"event":"pong","ts":1511545528111,"cid":1234}'
CCXT_ON = ('[0,"on",[96923856256,null,1655029337026,"tLTCUST",1655029337027,1655029337029,0.1,0.1,"EXCHANGE LIMIT",'
           'null,null,null,0,"ACTIVE",null,null,30,0,0,0,null,null,null,0,0,null,null,null,"BFX",null,null]]')
CCXT_OC = ('[0,"oc",[97084883506,null,1655110144596,"tLTCUST",1655110144596,1655110144598,0,0.1,"EXCHANGE MARKET",'
           'null,null,null,0,"EXECUTED @ 42.821(0.1)",null,null,42.799,42.821,0,0,null,null,null,0,0,null,null,null,'
           '"BFX",null,null,{}]]')
CCXT_TE = ('[0,"te",[1133411090,"tLTCUST",1655110144598,97084883506,0.1,42.821,"EXCHANGE MARKET",42.799,-1,null,null,'
           '1655110144596]]')
CCXT_TU = ('[0,"tu",[1133411090,"tLTCUST",1655110144598,97084883506,0.1,42.821,"EXCHANGE MARKET",42.799,-1,-0.0002,'
           '"LTC",1655110144596]]')
CCXT_AUTH_OK = ('{"event":"auth","status":"OK","chanId":0,"userId":3159883,"auth_id":"ac7108e7-2f26-424d-9982-'
                'c24700dc02ca","caps":{"orders":{"read":1,"write":1},"account":{"read":1,"write":1}}}')
NODE_AUTH_FAILED = '{"event":"auth","status":"FAILED","chanId":0,"code":10100,"msg":"apikey: invalid"}'


def adapter() -> BitfinexPrivateStream:
    stream = private_stream("bitfinex", REST)
    assert isinstance(stream, BitfinexPrivateStream)
    return stream


def order_frame(kind: str, *, oid: int = 34930659963, amount: str = "0.201104", orig: str = "0.201104",
                status: str = "ACTIVE", avg: str = "0", mts_update: int = 1574955083573, cid: int = 1574955083558) -> str:
    """The docs' order array with fields the "Orders" table defines changed; AMOUNT, AMOUNT_ORIG
    and PRICE_AVG are written as the exact JSON given."""
    row = json.loads(DOCS_OS)[2][0]
    row[0], row[2], row[5], row[13] = oid, cid, mts_update, status
    row[6], row[7], row[17] = "@A@", "@O@", "@P@"
    return json.dumps([0, kind, row]).replace('"@A@"', amount).replace('"@O@"', orig).replace('"@P@"', avg)


def trade_frame(kind: str, *, tid: int, oid: int, amount: str, price: str = "120", fee: str = "-0.0002") -> str:
    fee_part = "null,null" if kind == "te" else f'{fee},"ETH"'
    return f'[0,"{kind}",[{tid},"tETHUSD",1574963975602,{oid},{amount},{price},"EXCHANGE LIMIT",120,1,{fee_part},1]]'


# --- the adapter on the published examples ----------------------------------------------------

def test_endpoint_keepalive_and_pong() -> None:
    stream = adapter()
    assert stream.url == "wss://api.bitfinex.com/ws/2"
    assert stream.keepalive == KeepAlive(interval_s=20.0, message='{"event":"ping"}')
    assert stream.ready_on_connect is False and stream.open_op is None and stream.rest.shared_nonce
    assert stream.parse_frame(DOCS_PONG, 1) == [] and stream.parse_frame(b'[0,"hb"]', 1) == []


def test_auth_is_signed_as_the_docs_recipe_with_the_shared_nonce() -> None:
    creds = Credentials(api_key="key-1", secret="secret-1")
    (message,) = adapter().subscribe_messages(creds, None, 1_700_000_000_000, nonce=1_700_000_000_000_123)
    payload = "AUTH1700000000000123"
    assert json.loads(message) == {
        "event": "auth", "apiKey": "key-1", "authPayload": payload, "authNonce": 1_700_000_000_000_123,
        "authSig": hmac.new(b"secret-1", payload.encode(), hashlib.sha384).hexdigest(), "filter": ["trading"]}
    (fallback,) = adapter().subscribe_messages(creds, None, 1_700_000_000_000)  # the docs: Date.now() * 1000
    assert json.loads(fallback)["authNonce"] == 1_700_000_000_000_000


def test_the_os_snapshot_makes_the_stream_ready() -> None:
    stream = adapter()
    assert stream.parse_frame(CCXT_AUTH_OK, 1) == []
    assert stream.parse_frame(DOCS_OS, 1) == [StreamReady()]  # its rows: reconciled by the poll that follows
    assert stream.parse_frame('[0,"os",[]]', 1) == [StreamReady()]


def test_refusals_and_info_codes() -> None:
    stream = adapter()
    assert stream.parse_frame(NODE_AUTH_FAILED, 1) == [VenueNotice("error", "bitfinex 10100: apikey: invalid")]
    assert stream.parse_frame('{"event":"error","msg":"Unknown event","code":10000}', 1) == [
        VenueNotice("error", "bitfinex 10000: Unknown event")]
    assert stream.parse_frame('{"event":"info","code":20051,"msg":"Stopping. Please try to reconnect"}', 1) == [
        VenueNotice("reconnect", "bitfinex 20051: Stopping. Please try to reconnect")]
    assert stream.parse_frame('{"event":"info","code":20061,"msg":"Maintenance ended"}', 1)[0].kind == "reconnect"
    assert stream.parse_frame('{"event":"info","code":20060,"msg":"Entering maintenance"}', 1)[0].kind == "info"
    assert stream.parse_frame('{"event":"info","version":2,"platform":{"status":1}}', 1) == []
    assert stream.parse_frame('{"event":"info","version":2,"platform":{"status":0}}', 1)[0].kind == "info"


def test_an_echoed_key_or_signature_stays_out_of_the_notice() -> None:
    sig = hmac.new(b"s", b"AUTH1", hashlib.sha384).hexdigest()
    frame = json.dumps({"event": "auth", "status": "FAILED", "chanId": 0, "code": 10112,
                        "msg": f"authSig: invalid {sig} for sim-bitfinex-demo-key-000000000000"})
    (notice,) = adapter().parse_frame(frame, 1)
    assert notice.kind == "error" and notice.message.startswith("bitfinex 10112: authSig: invalid")
    assert sig not in notice.message and "sim-bitfinex-demo-key-000000000000" not in notice.message


def test_order_rows_are_the_order_totals_with_fills_to_follow() -> None:
    stream = adapter()
    (new,) = stream.parse_frame(CCXT_ON, 5)
    assert new == OrderUpdate(
        venue="bitfinex", client_order_id=None, venue_order_id="96923856256", state="open",
        filled_quantity=Decimal(0), ts_event=1655029337029 * MS, symbol="LTC-USDT", side="buy", order_type="limit",
        price=Decimal(30), quantity=Decimal("0.1"), fills_follow=True)
    (executed,) = stream.parse_frame(CCXT_OC, 5)
    assert (executed.state, executed.filled_quantity, executed.average_price, executed.order_type) == (
        "filled", Decimal("0.1"), Decimal("42.821"), "market")
    (canceled,) = stream.parse_frame(DOCS_OC, 5)
    assert (canceled.state, canceled.filled_quantity, canceled.ts_event, canceled.symbol) == (
        "canceled", 0, 1574955354487 * MS, "ETH-USD")


@pytest.mark.parametrize("kind, amount, orig, status, state, filled", [
    ("ou", "-0.3", "-0.5", "PARTIALLY FILLED @ 107.6(-0.2)", "partially_filled", "0.2"),
    ("oc", "-0.3", "-0.5", "CANCELED was: PARTIALLY FILLED @ 107.6(-0.2)", "canceled", "0.2"),
    ("oc", "0", "-0.5", "EXECUTED @ 107.6(-0.5)", "filled", "0.5"),
    ("oc", "0.3", "0.5", "INSUFFICIENT BALANCE was: PARTIALLY FILLED @ 107.6(0.2)", "canceled", "0.2"),
    ("oc", "0", "0.5", "RSN_DUST", "filled", "0.5"),
    ("oc", "0.5", "0.5", "POSTONLY CANCELED", "canceled", "0"),
])
def test_statuses_from_the_orders_table(kind: str, amount: str, orig: str, status: str, state: str, filled: str) -> None:
    (update,) = adapter().parse_frame(order_frame(kind, amount=amount, orig=orig, status=status, avg="107.6"), 1)
    assert (update.state, update.filled_quantity, update.side) == (state, Decimal(filled),
                                                                   "buy" if orig[0] != "-" else "sell")
    assert update.average_price == (Decimal("107.6") if Decimal(filled) else None)


def test_the_docs_trade_update_is_one_fill_with_its_fee() -> None:
    stream = adapter()
    assert stream.parse_frame(DOCS_TE, 1) == []  # no fee yet: the tu follows
    (fill,) = stream.parse_frame(DOCS_TU, 1)
    assert fill == OrderUpdate(
        venue="bitfinex", client_order_id=None, venue_order_id="34938060782", state="partially_filled",
        filled_quantity=Decimal("0.2"), ts_event=1574963975602 * MS, symbol="ETH-USDT", side="sell",
        order_type="market", last_fill_price=Decimal("153.57"), last_fill_quantity=Decimal("0.2"),
        fee=Decimal("0.061668"), fee_asset="USD", trade_id="402088407", cumulative=False)


def test_the_fill_that_executes_an_order_carries_its_final_state() -> None:
    """ccxt's market order: te, oc EXECUTED, tu: the tu is the order's last fill and total."""
    stream = adapter()
    assert stream.parse_frame(CCXT_TE, 1) == []
    stream.parse_frame(CCXT_OC, 1)
    (last,) = stream.parse_frame(CCXT_TU, 1)
    assert (last.state, last.filled_quantity, last.cumulative, last.trade_id, last.fee, last.fee_asset) == (
        "filled", Decimal("0.1"), True, "1133411090", Decimal("0.0002"), "LTC")
    assert (last.last_fill_quantity, last.last_fill_price, last.average_price) == (
        Decimal("0.1"), Decimal("42.821"), Decimal("42.821"))


def test_only_the_last_awaited_trade_of_an_executed_order_is_final() -> None:
    stream = adapter()
    frames = [trade_frame("te", tid=1, oid=7, amount="0.2"), order_frame("ou", oid=7, amount="0.3", orig="0.5",
                                                                          status="PARTIALLY FILLED @ 120(0.2)"),
              trade_frame("te", tid=2, oid=7, amount="0.3"), order_frame("oc", oid=7, amount="0", orig="0.5",
                                                                          status="EXECUTED @ 120(0.5)")]
    for frame in frames:
        stream.parse_frame(frame, 1)
    (first,) = stream.parse_frame(trade_frame("tu", tid=1, oid=7, amount="0.2"), 1)
    (second,) = stream.parse_frame(trade_frame("tu", tid=2, oid=7, amount="0.3"), 1)
    assert [(u.state, u.cumulative, u.filled_quantity, u.last_fill_quantity) for u in (first, second)] == [
        ("partially_filled", False, Decimal("0.2"), Decimal("0.2")), ("filled", True, Decimal("0.5"), Decimal("0.3"))]


def test_a_trade_update_before_the_close_or_after_a_cancel_is_a_fill_of_its_own() -> None:
    stream = adapter()
    stream.parse_frame(trade_frame("te", tid=3, oid=8, amount="0.5"), 1)
    (early,) = stream.parse_frame(trade_frame("tu", tid=3, oid=8, amount="0.5"), 1)  # before its oc
    assert (early.state, early.cumulative) == ("partially_filled", False)
    stream.parse_frame(order_frame("oc", oid=9, amount="0.3", orig="0.5", status="CANCELED was: PARTIALLY FILLED"), 1)
    (late,) = stream.parse_frame(trade_frame("tu", tid=4, oid=9, amount="0.2"), 1)
    assert (late.state, late.cumulative) == ("partially_filled", False)


def test_a_new_connection_forgets_what_the_last_one_awaited() -> None:
    stream = adapter()
    stream.parse_frame(trade_frame("te", tid=5, oid=10, amount="0.2"), 1)
    stream.subscribe_messages(DEMO, None, 1, nonce=2)
    stream.parse_frame(order_frame("oc", oid=10, amount="0", orig="0.5", status="EXECUTED @ 120(0.5)"), 1)
    (fill,) = stream.parse_frame(trade_frame("tu", tid=6, oid=10, amount="0.3"), 1)
    assert (fill.state, fill.cumulative) == ("filled", True)  # trade 5's tu will not come on this connection


def test_client_order_ids_are_hashed_so_updates_name_the_order_id() -> None:
    cid = venue_cid("strategy-7_buy")
    assert REST.venue_client_order_id("strategy-7_buy") == str(cid) and cid < 2 ** 45
    (update,) = adapter().parse_frame(order_frame("on", cid=cid), 1)
    assert (update.client_order_id, update.venue_order_id) == (None, "34930659963")


@pytest.mark.parametrize("frame, error", [
    ("not json", msgspec.DecodeError),
    ("[0]", ValueError),
    ('[0,"ou"]', ValueError),
    ('[0,"ou",[1,2]]', msgspec.ValidationError),
    ('[0,"os",{}]', msgspec.ValidationError),
    ('{"status":"OK"}', msgspec.ValidationError),
    (order_frame("ou", amount='"lots"'), msgspec.ValidationError),
    (order_frame("ou", amount='"NaN"'), ValueError),
    (order_frame("ou", orig="0"), ValueError),
    (order_frame("ou", amount="0.3", orig="0.2"), ValueError),
    (trade_frame("tu", tid=1, oid=1, amount="0"), ValueError),
    (trade_frame("tu", tid=1, oid=1, amount="0.1", price="0"), ValueError),
])
def test_unreadable_frames_raise(frame: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        adapter().parse_frame(frame, 1)


def test_other_messages_are_not_order_news() -> None:
    stream = adapter()
    for frame in ('[0,"n",[1575282446099,"on-req",null,null,[],null,"SUCCESS","Submitting 1 orders."]]',
                  '[0,"wu",["exchange","BTC",1,0,1,null,null]]', '[0,"bu",[1,1]]', '[17470,"hb"]',
                  '[17470,[[401597393,1574694475039,0.005,7244.9]]]', '{"event":"conf","status":"OK","flags":65536}'):
        assert stream.parse_frame(frame, 1) == []


# --- against the simulator --------------------------------------------------------------------

@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator({"replay": False, "venues": ["bitfinex"]}) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    async with HttpTransport() as transport:
        yield transport


@asynccontextmanager
async def raw_ws(sim: Simulator) -> AsyncIterator[ClientConnection]:
    async with connect(sim.ws_url("bitfinex") + "/ws/2", open_timeout=2) as ws:
        yield ws


async def reply(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 2))


def auth(creds: Credentials, nonce: int, **extra: Any) -> str:
    payload = f"AUTH{nonce}"
    return json.dumps({"event": "auth", "apiKey": creds.api_key, "authNonce": nonce, "authPayload": payload,
                       "authSig": hmac.new(creds.secret.encode(), payload.encode(), hashlib.sha384).hexdigest(), **extra})


def ahead_of_us(sim: Simulator) -> Decimal:
    return sim.venues["bitfinex"].core.levels(SYMBOL, "buy", 1)[0][1]


def of_order(probe: Probe, venue_order_id: str) -> list[OrderUpdate]:
    return [u for u in probe.updates if u.venue_order_id == venue_order_id]


def notices(probe: Probe) -> list[VenueNotice]:
    return [e for e in probe.events if isinstance(e, VenueNotice)]


def sent(probe: Probe, kind: str) -> list[list[Any]]:
    frames = [json.loads(r) for r in probe.raw]
    return [f for f in frames if isinstance(f, list) and f[1] == kind]


async def test_the_stream_is_ready_on_the_snapshot_after_auth(sim: Simulator) -> None:
    async with open_probe(sim, "bitfinex") as probe:
        assert probe.ready
        info, ok, snapshot = (json.loads(r) for r in probe.raw[:3])
    assert (info["event"], info["version"], info["platform"]) == ("info", 2, {"status": 1})
    assert (ok["event"], ok["status"], ok["chanId"]) == ("auth", "OK", 0) and isinstance(ok["userId"], int)
    assert ok["caps"]["orders"] == {"read": 1, "write": 1}
    assert snapshot == [0, "os", []]
    assert probe.updates == [] and probe.errors == [] and notices(probe) == []


async def test_a_resting_buy_filled_in_three_takes(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bitfinex", http)
    async with open_probe(sim, "bitfinex") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "bfxws1", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.003"))
        await trader.take(SYMBOL, Decimal("0.004"))
        updates = await probe.until(lambda p: (u := of_order(p, placed.venue_order_id)) and u[-1].trade_id
                                    and u[-1].state == "filled" and u)
    assert probe.errors == [] and {u.venue_order_id for u in probe.updates} == {placed.venue_order_id}
    assert [(u.state, u.filled_quantity, u.trade_id is not None, u.cumulative) for u in updates] == [
        ("open", 0, False, True),
        ("partially_filled", Decimal("0.003"), False, True), ("partially_filled", Decimal("0.003"), True, False),
        ("partially_filled", Decimal("0.006"), False, True), ("partially_filled", Decimal("0.003"), True, False),
        ("filled", Decimal("0.01"), False, True), ("filled", Decimal("0.01"), True, True)]
    order = sim.venues["bitfinex"].core.orders[placed.venue_order_id]
    fills = [u for u in updates if u.trade_id is not None]
    assert [(u.trade_id, u.last_fill_quantity, u.last_fill_price, u.fee, u.fee_asset) for u in fills] == [
        (str(f.trade_id), f.quantity, f.price, f.fee, f.fee_asset) for f in order.fills]
    assert all(u.fee > 0 for u in fills) and all(u.fills_follow for u in updates if u.trade_id is None)
    assert all((u.symbol, u.side, u.order_type) == (SYMBOL, "buy", "limit") for u in updates)
    assert updates[-1].average_price == bid and updates[-1].quantity == Decimal("0.01")
    assert [f[1] for f in (json.loads(r) for r in probe.raw[3:])] == ["on"] + ["te", "ou", "tu"] * 2 + ["te", "oc", "tu"]
    (closing,) = sent(probe, "oc")
    assert closing[2][13].startswith("EXECUTED @ ") and closing[2][2] == venue_cid("bfxws1")
    te, tu = sent(probe, "te")[-1][2], sent(probe, "tu")[-1][2]
    assert te[:9] == tu[:9] and te[9:11] == [None, None] and tu[9] < 0  # FEE negative = charged


async def test_a_cancel_after_a_partial_fill(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bitfinex", http)
    async with open_probe(sim, "bitfinex") as probe:
        bid = await trader.best_bid(SYMBOL)
        placed = await trader.rest_buy(SYMBOL, "bfxws2", Decimal("0.01"), bid)
        await trader.take(SYMBOL, ahead_of_us(sim) - Decimal("0.01") + Decimal("0.004"))
        await trader.cancel(SYMBOL, "bfxws2", placed.venue_order_id)
        updates = await probe.until(lambda p: (u := of_order(p, placed.venue_order_id)) and u[-1].state == "canceled" and u)
    assert [(u.state, u.filled_quantity, u.trade_id is not None) for u in updates] == [
        ("open", 0, False), ("partially_filled", Decimal("0.004"), False), ("partially_filled", Decimal("0.004"), True),
        ("canceled", Decimal("0.004"), False)]
    assert sent(probe, "oc")[-1][2][13].startswith("CANCELED was: PARTIALLY FILLED @ ")


async def test_the_snapshot_lists_the_open_orders_as_rest_does(sim: Simulator, http: HttpTransport) -> None:
    trader = Trader(sim, "bitfinex", http)
    placed = await trader.rest_buy(SYMBOL, "bfxws3", Decimal("0.01"), await trader.best_bid(SYMBOL))
    async with open_probe(sim, "bitfinex") as probe:
        (snapshot,) = sent(probe, "os")
    (row,) = snapshot[2]
    order = sim.venues["bitfinex"].core.orders[placed.venue_order_id]
    assert row == json.loads(encode(sim.venues["bitfinex"]._row(order), decimals_as_numbers=True))
    assert (str(row[0]), row[2], row[3], row[13]) == (placed.venue_order_id, venue_cid("bfxws3"), "tTESTBTC:TESTUSD", "ACTIVE")
    assert probe.updates == []  # the snapshot is reconciled by a poll, not read as updates


@pytest.mark.parametrize("creds, error", [
    (Credentials(api_key="not-a-key", secret=DEMO.secret), "bitfinex 10100: apikey: invalid"),
    (Credentials(api_key=DEMO.api_key, secret="not-the-secret"), "bitfinex 10100: apikey: digest invalid"),
])
async def test_bad_credentials_are_refused(sim: Simulator, creds: Credentials, error: str) -> None:
    async with open_probe(sim, "bitfinex", creds=creds, wait_ready=False) as probe:
        (notice,) = await probe.until(notices)
    assert notice == VenueNotice("error", error)
    assert not probe.ready and json.loads(probe.raw[1])["status"] == "FAILED"


async def test_the_auth_nonce_is_the_keys_rest_counter(sim: Simulator, http: HttpTransport) -> None:
    nonce = next_nonce()
    async with raw_ws(sim) as ws:
        await ws.send(auth(DEMO, nonce))
        assert (await reply(ws))["event"] == "info"
        assert (await reply(ws))["status"] == "OK"
    async with raw_ws(sim) as ws:
        for old in (nonce, nonce - 1):
            await ws.send(auth(DEMO, old))
            answer = await reply(ws)
            answer = answer if answer["event"] == "auth" else await reply(ws)
            assert (answer["status"], answer["code"], answer["msg"]) == ("FAILED", 10114, "nonce: small")
        await ws.send(auth(DEMO, 9007199254740992))  # above MAX_SAFE_INTEGER
        assert ((await reply(ws))["code"], ) == (10114, )
    request = rest_adapter("bitfinex", sim.url("bitfinex")).build_request("balance", None, DEMO, 0, nonce)  # one counter
    response = await http.send(request, idempotent=True)
    assert json.loads(response.body) == ["error", 10114, "nonce: small"]


async def test_the_protocol_replies(sim: Simulator) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(json.dumps({"event": "ping", "cid": 1234}))
        assert (await reply(ws))["event"] == "info"
        pong = await reply(ws)
        assert (pong["event"], pong["cid"], isinstance(pong["ts"], int)) == ("pong", 1234, True)
        for bad in ("hello", json.dumps({"event": "nope"}), json.dumps([0, "on", None, {"cid": 1}])):
            await ws.send(bad)
            assert await reply(ws) == {"event": "error", "msg": "Unknown event", "code": 10000}
        await ws.send(json.dumps({"event": "subscribe", "channel": "trades", "symbol": "tTESTBTC:TESTUSD"}))
        assert (await reply(ws))["code"] == 10300  # public channels are not served here
        await ws.send(json.dumps({"event": "auth", "apiKey": DEMO.api_key, "authNonce": 5, "authPayload": "AUTH4"}))
        assert ((await reply(ws))["code"]) == 10111
        await ws.send(auth(DEMO, next_nonce(), filter="trading"))
        assert ((await reply(ws))["code"]) == 10020
        await ws.send(auth(DEMO, next_nonce()))
        assert (await reply(ws))["status"] == "OK" and (await reply(ws))[1] == "os"
        await ws.send(auth(DEMO, next_nonce()))
        assert await reply(ws) == {"event": "auth", "status": "FAILED", "chanId": 0, "code": 10100, "msg": "auth: dup"}


async def test_a_filter_without_trading_receives_no_orders(sim: Simulator, http: HttpTransport) -> None:
    async with raw_ws(sim) as ws:
        await ws.send(auth(DEMO, next_nonce(), filter=["trading-tDOGUSD", "wallet"]))
        await reply(ws)
        assert (await reply(ws))["status"] == "OK" and await reply(ws) == [0, "os", []]
        trader = Trader(sim, "bitfinex", http)
        await trader.rest_buy(SYMBOL, "bfxws4", Decimal("0.01"), await trader.best_bid(SYMBOL))
        await ws.send(json.dumps({"event": "ping"}))
        assert (await reply(ws))["event"] == "pong"  # the TESTBTC:TESTUSD order was not pushed
    async with raw_ws(sim) as ws:
        await ws.send(auth(DEMO, next_nonce(), filter=["trading-tTESTBTC:TESTUSD"]))
        await reply(ws), await reply(ws)
        (row,) = (await reply(ws))[2]
        assert row[2] == venue_cid("bfxws4")


async def test_a_dropped_stream_and_a_refused_reconnect(sim: Simulator) -> None:
    dialect = sim.venues["bitfinex"]
    async with open_probe(sim, "bitfinex") as probe:
        dialect.private_refused = True
        assert dialect.drop_private() == 1
        await asyncio.wait_for(probe.ws.wait_closed(), 5)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(sim.ws_url("bitfinex") + "/ws/2")
    assert refused.value.status == 503
