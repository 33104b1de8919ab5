"""The wire contract: round trips of every message and decode-time rejections that name
the offending field (DESIGN.md "Wire contract")."""

from __future__ import annotations

import json
from decimal import Decimal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from schemas import (
    BBO, AuditEvent, BookDelta, BookSnapshot, CancelOrder, CredentialGrant, CredentialRequest,
    FeedStatus, OrderCommand, OrderEvent, PlaceOrder, PriceLevel, QueryReply, Ticker, Trade,
)
from schemas.common import VENUES
from schemas.market import MarketData
from schemas.queries import BalanceReply, Balance, Query, QueryError, TradeHistoryQuery
from schemas.vault import Credentials, SealedBox, VaultReply

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
venues = st.sampled_from(VENUES)
symbols = st.builds(lambda b, q: f"{b}-{q}", st.text(ALNUM, min_size=1, max_size=8), st.text(ALNUM, min_size=1, max_size=8))
accounts = st.text("abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=32)
ids = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=36)
positive = st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), allow_nan=False, allow_infinity=False, places=12)
nanos = st.integers(min_value=0, max_value=2**63 - 1)


@st.composite
def place_orders(draw: st.DrawFn) -> PlaceOrder:
    order_type = draw(st.sampled_from(["limit", "market"]))
    common = dict(
        command_id=draw(ids), venue=draw(venues), account=draw(accounts), symbol=draw(symbols),
        client_order_id=draw(ids), side=draw(st.sampled_from(["buy", "sell"])), ts_created=draw(nanos),
    )
    if order_type == "limit":
        tif = draw(st.sampled_from(["gtc", "ioc", "fok"]))
        return PlaceOrder(**common, order_type="limit", quantity=draw(positive), price=draw(positive),
                          time_in_force=tif, post_only=tif == "gtc" and draw(st.booleans()))
    by_quote = draw(st.booleans())
    return PlaceOrder(**common, order_type="market", time_in_force="ioc",
                      quantity=None if by_quote else draw(positive),
                      quote_quantity=draw(positive) if by_quote else None)


cancels = st.builds(CancelOrder, command_id=ids, venue=venues, account=accounts, symbol=symbols,
                    client_order_id=ids, ts_created=nanos)
commands = st.one_of(place_orders(), cancels)


@settings(max_examples=300)
@given(commands)
def test_commands_round_trip_exactly(command: PlaceOrder | CancelOrder) -> None:
    wire = schemas.encode(command)
    assert schemas.decode(wire, OrderCommand) == command
    # decimals travel as strings, never floats
    body = json.loads(wire)
    for key in ("quantity", "price", "quote_quantity"):
        if body.get(key) is not None:
            assert isinstance(body[key], str)


def _valid_place() -> dict:
    return {
        "type": "place", "command_id": "cmd-1", "venue": "binance", "account": "main",
        "symbol": "BTC-USDT", "client_order_id": "c-1", "side": "buy", "order_type": "limit",
        "quantity": "0.5", "price": "30000.1",
    }


@pytest.mark.parametrize(
    ("field", "value", "names"),
    [
        ("venue", "binanceus", "$.venue"),
        ("venue", "BINANCE", "$.venue"),
        ("symbol", "BTCUSDT", "$.symbol"),
        ("symbol", "btc-usdt", "$.symbol"),
        ("symbol", "BTC-USDT-PERP", "$.symbol"),
        ("client_order_id", "has space", "$.client_order_id"),
        ("client_order_id", "dots.break.subjects", "$.client_order_id"),
        ("client_order_id", "x" * 37, "$.client_order_id"),
        ("client_order_id", "", "$.client_order_id"),
        ("account", "Main", "$.account"),
        ("account", "a.b", "$.account"),
        ("side", "long", "$.side"),
        ("order_type", "stop", "$.order_type"),
        ("time_in_force", "day", "$.time_in_force"),
        ("quantity", "-0.5", "`quantity`"),
        ("quantity", "0", "`quantity`"),
        ("quantity", "NaN", "`quantity`"),
        ("quantity", "Infinity", "`quantity`"),
        ("quantity", "abc", "$.quantity"),
        ("price", "-1", "`price`"),
        ("command_id", None, "$.command_id"),
    ],
)
def test_bad_place_order_is_rejected_naming_the_field(field: str, value: object, names: str) -> None:
    body = _valid_place()
    body[field] = value
    with pytest.raises(msgspec.ValidationError) as err:
        schemas.decode(json.dumps(body), OrderCommand)
    assert names in str(err.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"price": None}, "a limit order needs `quantity` and `price`"),
        ({"quantity": None}, "a limit order needs `quantity` and `price`"),
        ({"order_type": "market"}, "a market order takes no `price`"),
        ({"order_type": "market", "price": None, "quote_quantity": "100"}, "exactly one of `quantity` or `quote_quantity`"),
        ({"post_only": True, "time_in_force": "ioc"}, "`post_only` is only valid on a GTC limit order"),
        ({"quote_quantity": "5"}, "`quote_quantity` is for market orders only"),
    ],
)
def test_contradictory_place_order_is_rejected(changes: dict, message: str) -> None:
    body = _valid_place() | changes
    with pytest.raises(msgspec.ValidationError, match=message.replace("`", "`").replace("(", r"\(")):
        schemas.decode(json.dumps(body), OrderCommand)


def test_missing_field_is_named() -> None:
    body = _valid_place()
    del body["symbol"]
    with pytest.raises(msgspec.ValidationError, match="missing required field `symbol`"):
        schemas.decode(json.dumps(body), OrderCommand)


def test_unknown_command_type_is_rejected() -> None:
    body = _valid_place() | {"type": "amend"}
    with pytest.raises(msgspec.ValidationError, match="Invalid value 'amend' - at `\\$.type`"):
        schemas.decode(json.dumps(body), OrderCommand)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(list(_valid_place())), st.one_of(st.none(), st.integers(), st.text(max_size=40), st.floats(allow_nan=True))))
def test_random_garbage_never_decodes_into_an_invalid_command(patch: dict) -> None:
    body = _valid_place() | patch
    try:
        cmd = schemas.decode(json.dumps(body), OrderCommand)
    except msgspec.DecodeError:  # ValidationError is a DecodeError; so is non-JSON like Infinity
        return
    # anything that does decode satisfies every rule of the contract
    assert cmd.venue in VENUES
    if isinstance(cmd, PlaceOrder):
        assert cmd.quantity is None or cmd.quantity > 0
        assert cmd.price is None or cmd.price > 0


def _levels(*pairs: tuple[str, str]) -> list[PriceLevel]:
    return [PriceLevel(Decimal(p), Decimal(s)) for p, s in pairs]


MARKET_SAMPLES = [
    Trade(venue="binance", symbol="BTC-USDT", ts_event=1, ts_recv=2, trade_id="42", price=Decimal("30000.01"), quantity=Decimal("0.00100000"), side="sell"),
    Ticker(venue="upbit", symbol="BTC-KRW", ts_event=1, ts_recv=2, bid=Decimal("1"), ask=Decimal("2"), last=Decimal("1.5")),
    BookSnapshot(venue="kraken", symbol="BTC-USD", ts_event=1, ts_recv=2, sequence=1, bids=_levels(("100", "1")), asks=_levels(("101", "2"))),
    BookDelta(venue="okx", symbol="BTC-USDT", ts_event=1, ts_recv=2, sequence=2, bids=_levels(("100", "0")), asks=[], venue_sequence=99),
    BBO(venue="bitfinex", symbol="BTC-USD", ts_event=1, ts_recv=2, bid=Decimal("100"), bid_size=Decimal("1"), ask=None, ask_size=None),
    FeedStatus(venue="coinbase", state="gap", ts=5, symbol="BTC-USD", channel="book", reason="sequence 10 after 8"),
]


@pytest.mark.parametrize("message", MARKET_SAMPLES, ids=lambda m: type(m).__name__)
def test_market_data_round_trips_through_the_union(message: object) -> None:
    assert schemas.decode(schemas.encode(message), MarketData) == message


def test_price_level_is_positional_and_exact() -> None:
    level = PriceLevel(Decimal("0.00000001"), Decimal("12.50"))
    wire = schemas.encode(level)
    assert json.loads(wire) == [str(Decimal("0.00000001")), "12.50"]  # strings, trailing zeros kept
    assert schemas.decode(wire, PriceLevel) == level


def test_book_level_with_negative_size_is_rejected() -> None:
    wire = b'{"type":"book_delta","venue":"okx","symbol":"BTC-USDT","ts_event":1,"ts_recv":1,"sequence":1,"bids":[["100","-1"]],"asks":[]}'
    with pytest.raises(msgspec.ValidationError, match="`size` must be a finite number >= 0"):
        schemas.decode(wire, MarketData)


def test_order_event_rejected_needs_an_error_code() -> None:
    with pytest.raises(ValueError, match="needs an `error` code"):
        OrderEvent(event_id="e", venue="binance", account="a", symbol="BTC-USDT", client_order_id="c", status="rejected", ts_event=1, ts=1)
    ev = OrderEvent(event_id="e", venue="binance", account="a", symbol="BTC-USDT", client_order_id="c", status="rejected",
                    error="insufficient_balance", reason="Account has insufficient balance", ts_event=1, ts=1)
    assert ev.is_terminal
    assert schemas.decode(schemas.encode(ev), OrderEvent) == ev


def test_queries_and_replies_round_trip() -> None:
    q = TradeHistoryQuery(symbol="ETH-KRW", since=10, limit=5)
    assert schemas.decode(schemas.encode(q), Query) == q
    r = BalanceReply(balances=[Balance(asset="KRW", free=Decimal("1000"), locked=Decimal("0"))])
    assert schemas.decode(schemas.encode(r), QueryReply) == r
    e = QueryError(error="rate_limited", message="slow down", retry_after_s=1.5)
    assert schemas.decode(schemas.encode(e), QueryReply) == e
    with pytest.raises(msgspec.ValidationError, match=r"\$.limit"):
        schemas.decode(b'{"type":"trade_history","symbol":"ETH-KRW","limit":0}', Query)


def test_vault_messages_round_trip_and_check_key_sizes() -> None:
    req = CredentialRequest(request_id="r1", venue="upbit", account="main", service_id="executor", token="t", ephemeral_public_key=b"\x01" * 32)
    assert schemas.decode(schemas.encode(req), CredentialRequest) == req
    grant = CredentialGrant(request_id="r1", lease_id="l1", ttl_s=60, expires_at=1, key_version=1,
                            sealed=SealedBox(sender_public_key=b"\x02" * 32, nonce=b"n" * 12, ciphertext=b"c" * 40))
    assert schemas.decode(schemas.encode(grant), VaultReply) == grant
    short = schemas.encode(req).replace(b'"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="', b'"AQE="')
    with pytest.raises(msgspec.ValidationError, match=r"\$.ephemeral_public_key"):
        schemas.decode(short, CredentialRequest)
    audit = AuditEvent(event_id="a", action="deny", actor="strategy", outcome="denied", ts=1, reason="forbidden")
    assert schemas.decode(schemas.encode(audit), AuditEvent) == audit


def test_credentials_never_show_their_values() -> None:
    creds = Credentials(api_key="AKIA-visible-key", secret="s3cr3t-value", passphrase="pp")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "s3cr3t" not in text and "AKIA" not in text and "pp" not in text.replace("passphrase", "")
