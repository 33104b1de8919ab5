"""Client order id semantics, as the venues document them.

Binance (rest-api.md, POST /api/v3/order ``newClientOrderId``): "A unique id among open
orders. ... Orders with the same newClientOrderID can be accepted only when the previous
one is filled, otherwise the order will be rejected." (-2010 "Duplicate order sent.").
Upbit (docs.upbit.com 주문하기, ``identifier``): unique among all the user's orders; "even
if the order request fails, the same value cannot be sent again".
Book: NKNUSDT snapshot from ../shared/data/recorded/BINANCE.http.0.0 (best ask 0.3525).
"""

from __future__ import annotations

from typing import Any

REST = {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100", "price": "0.3500"}
TAKE = {"symbol": "NKNUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "100", "price": "0.3525"}


async def test_binance_rejects_a_client_order_id_in_use_by_an_open_order(binance: Any, read_ledger: Any) -> None:
    first = await binance.order(**REST, newClientOrderId="dup-1")
    assert (first.status, first.json["status"]) == (200, "NEW")
    second = await binance.order(**REST, newClientOrderId="dup-1")
    assert (second.status, second.json) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    ledger = await read_ledger()
    assert [o["client_order_id"] for o in ledger["orders"]] == ["dup-1"]
    assert [(r["client_order_id"], r["error"], r["message"]) for r in ledger["rejected"]] == [
        ("dup-1", "-2010", "Duplicate order sent.")]


async def test_binance_accepts_the_id_again_once_the_first_order_is_canceled(binance: Any) -> None:
    first = await binance.order(**REST, newClientOrderId="dup-2")
    await binance.signed("DELETE", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "dup-2"})
    second = await binance.order(**REST, newClientOrderId="dup-2")
    assert (second.status, second.json["status"]) == (200, "NEW")
    assert second.json["orderId"] != first.json["orderId"]
    # a query by the id now finds the open one
    found = await binance.signed("GET", "/api/v3/order", {"symbol": "NKNUSDT", "origClientOrderId": "dup-2"})
    assert (found.json["orderId"], found.json["status"]) == (second.json["orderId"], "NEW")


async def test_binance_accepts_the_id_again_once_the_first_order_filled(binance: Any, read_ledger: Any) -> None:
    """The hazard exbus guards against: a blind re-send after a fill makes a second order."""
    first = await binance.order(**TAKE, newClientOrderId="dup-3")
    assert first.json["status"] == "FILLED"
    second = await binance.order(**TAKE, newClientOrderId="dup-3")
    assert (second.status, second.json["status"]) == (200, "FILLED")
    assert [o["client_order_id"] for o in (await read_ledger())["orders"]] == ["dup-3", "dup-3"]


async def test_binance_ids_are_per_account(binance: Any, binance_b: Any) -> None:
    assert (await binance.order(**REST, newClientOrderId="same")).status == 200
    assert (await binance_b.order(**REST, newClientOrderId="same")).status == 200


async def test_binance_rejects_a_malformed_client_order_id(binance: Any) -> None:
    reply = await binance.order(**REST, newClientOrderId="bad id!")
    assert (reply.status, reply.json["code"]) == (400, -1100)


async def test_binance_generates_an_id_when_none_is_sent(binance: Any) -> None:
    reply = await binance.order(**REST)
    assert len(reply.json["clientOrderId"]) == 22 and reply.json["clientOrderId"].isalnum()


ORDER = {"market": "KRW-LAMB", "side": "bid", "volume": "100", "price": "120", "ord_type": "limit"}


async def test_upbit_identifier_is_unique_forever(upbit: Any, read_ledger: Any) -> None:
    first = await upbit.order(**ORDER, identifier="id-1")
    assert (first.status, first.json["identifier"]) == (201, "id-1")
    again = await upbit.order(**ORDER, identifier="id-1")
    assert (again.status, again.json["error"]["name"]) == (400, "duplicate_identifier")
    await upbit.request("DELETE", "/v1/order", params={"identifier": "id-1"})
    after_cancel = await upbit.order(**ORDER, identifier="id-1")
    assert (after_cancel.status, after_cancel.json["error"]["name"]) == (400, "duplicate_identifier")
    ledger = await read_ledger()
    assert [o["client_order_id"] for o in ledger["orders"] if o["venue"] == "upbit"] == ["id-1"]


async def test_upbit_identifier_is_used_up_by_a_failed_order(upbit: Any) -> None:
    failed = await upbit.order(**(ORDER | {"volume": "1000000"}), identifier="id-2")
    assert failed.json["error"]["name"] == "insufficient_funds_bid"
    retry = await upbit.order(**ORDER, identifier="id-2")
    assert (retry.status, retry.json["error"]["name"]) == (400, "duplicate_identifier")


async def test_upbit_order_is_found_and_canceled_by_identifier(upbit: Any) -> None:
    placed = (await upbit.order(**ORDER, identifier="id-3")).json
    found = await upbit.request("GET", "/v1/order", params={"identifier": "id-3"})
    assert found.json["uuid"] == placed["uuid"]
    canceled = await upbit.request("DELETE", "/v1/order", params={"identifier": "id-3"})
    assert canceled.json["uuid"] == placed["uuid"]
    assert (await upbit.request("GET", "/v1/order", params={"identifier": "id-3"})).json["state"] == "cancel"


async def test_upbit_identifiers_are_per_account(upbit: Any, upbit_b: Any) -> None:
    assert (await upbit.order(**ORDER, identifier="shared")).status == 201
    assert (await upbit_b.order(**ORDER, identifier="shared")).status == 201
