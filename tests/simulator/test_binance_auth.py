"""Binance signed-request verification, against the examples of the official docs.

Source: binance/binance-spot-api-docs rest-api.md, "SIGNED Endpoint Examples for
POST /api/v3/order" (apiKey, secretKey, parameters and expected signatures below are the
documented ones), "Timing security", and errors.md for the codes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, AsyncIterator

import aiohttp
import pytest

from services.simulator import ManualClock, Simulator
from services.simulator.dialects.binance import verify_signature

DOC_API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOC_SIGNATURE = "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
DOC_MIXED_QUERY = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
DOC_MIXED_BODY = "quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
DOC_MIXED_SIGNATURE = "0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77"
DOC_UNICODE_PARAMS = ("symbol=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96&side=BUY&type=LIMIT"
                      "&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559")
DOC_UNICODE_SIGNATURE = "e1353ec6b14d888f1164ae9af8228a3dbd508bc82eb867db8ab6046442f33ef3"
DOC_TIME_NS = (1499827319559 + 300) * 1_000_000
"""Server time 300 ms after the documented timestamp: inside the documented recvWindow of 5000."""
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_the_documented_signatures_follow_from_the_documented_formula() -> None:
    """HMAC-SHA256(secretKey, totalParams) hex, totalParams = query string + body (no '&' between)."""
    sign = lambda text: hmac.new(DOC_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()  # noqa: E731
    assert sign(DOC_PARAMS) == DOC_SIGNATURE
    assert sign(DOC_MIXED_QUERY + DOC_MIXED_BODY) == DOC_MIXED_SIGNATURE
    assert sign(DOC_UNICODE_PARAMS) == DOC_UNICODE_SIGNATURE


@pytest.mark.parametrize("query, body, ok", [
    (DOC_PARAMS + "&signature=" + DOC_SIGNATURE, "", True),                      # example 2: query string
    ("", DOC_PARAMS + "&signature=" + DOC_SIGNATURE, True),                      # example 1: request body
    (DOC_MIXED_QUERY, DOC_MIXED_BODY + "&signature=" + DOC_MIXED_SIGNATURE, True),  # example 3: mixed
    (DOC_UNICODE_PARAMS + "&signature=" + DOC_UNICODE_SIGNATURE, "", True),      # non-ASCII symbol, signed encoded
    (DOC_MIXED_QUERY, DOC_MIXED_BODY + "&signature=" + DOC_SIGNATURE, False),   # example 3 needs its own signature
    (DOC_PARAMS + "&signature=" + DOC_SIGNATURE.upper(), "", True),             # "signature is not case sensitive"
    (DOC_PARAMS.replace("quantity=1", "quantity=2") + "&signature=" + DOC_SIGNATURE, "", False),
    (DOC_PARAMS, "", False),                                                     # no signature at all
])
def test_verify_signature_on_documented_examples(query: str, body: str, ok: bool) -> None:
    assert verify_signature(DOC_SECRET, query, body) is ok


@pytest.fixture
async def docs_sim() -> AsyncIterator[Simulator]:
    """The simulator with the docs' API key, its clock just after the docs' timestamp."""
    settings = {"replay": False, "binance": {"accounts": [
        {"name": "docs", "api_key": DOC_API_KEY, "secret": DOC_SECRET, "balances": {"BTC": "10"}}]}}
    async with Simulator(settings, clock=ManualClock(DOC_TIME_NS)) as sim:
        yield sim


async def send(session: aiohttp.ClientSession, sim: Simulator, method: str, query: str = "", body: str = "",
               api_key: str | None = DOC_API_KEY) -> tuple[int, Any]:
    headers = FORM | ({"X-MBX-APIKEY": api_key} if api_key is not None else {})
    url = sim.binance_url + "/api/v3/order" + (f"?{query}" if query else "")
    async with session.request(method, url, data=body or None, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("query, body", [
    ("", DOC_PARAMS + "&signature=" + DOC_SIGNATURE),
    (DOC_PARAMS + "&signature=" + DOC_SIGNATURE, ""),
    (DOC_MIXED_QUERY, DOC_MIXED_BODY + "&signature=" + DOC_MIXED_SIGNATURE),
])
async def test_the_documented_requests_place_an_order(docs_sim: Simulator, session: aiohttp.ClientSession,
                                                      query: str, body: str) -> None:
    status, reply = await send(session, docs_sim, "POST", query, body)
    assert status == 200, reply
    assert reply["symbol"] == "LTCBTC" and reply["side"] == "BUY" and reply["type"] == "LIMIT"
    assert reply["price"] == "0.10000000" and reply["origQty"] == "1.00000000"
    assert reply["status"] == "NEW"  # LTCBTC has no recorded book: the order rests


async def test_a_non_ascii_request_is_verified_over_its_encoded_form(docs_sim: Simulator,
                                                                    session: aiohttp.ClientSession) -> None:
    """The signature passes; the request then fails only because the symbol does not exist."""
    status, reply = await send(session, docs_sim, "POST", DOC_UNICODE_PARAMS + "&signature=" + DOC_UNICODE_SIGNATURE)
    assert (status, reply) == (400, {"code": -1121, "msg": "Invalid symbol."})


@pytest.mark.parametrize("query, api_key, expected", [
    (DOC_PARAMS + "&signature=" + "0" * 64, DOC_API_KEY,
     (400, -1022, "Signature for this request is not valid.")),
    (DOC_PARAMS.replace("price=0.1", "price=0.2") + "&signature=" + DOC_SIGNATURE, DOC_API_KEY,
     (400, -1022, "Signature for this request is not valid.")),
    (DOC_PARAMS, DOC_API_KEY,
     (400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")),
    (DOC_PARAMS + "&signature=" + DOC_SIGNATURE, None, (401, -2014, "API-key format invalid.")),
    (DOC_PARAMS + "&signature=" + DOC_SIGNATURE, "not-a-key",
     (401, -2015, "Invalid API-key, IP, or permissions for action.")),
])
async def test_bad_requests_get_the_venues_errors(docs_sim: Simulator, session: aiohttp.ClientSession,
                                                  query: str, api_key: str | None, expected: tuple) -> None:
    status, reply = await send(session, docs_sim, "POST", query, api_key=api_key)
    assert (status, reply["code"], reply["msg"]) == expected
    assert (await (await session.get(docs_sim.binance_url + "/__sim/ledger")).json())["orders"] == []


def signed(params: str, secret: str = DOC_SECRET) -> str:
    return params + "&signature=" + hmac.new(secret.encode(), params.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize("server_ms, params, expected", [
    # "if (timestamp < (serverTime + 1000) && (serverTime - timestamp) <= recvWindow)"
    (1499827319559 + 5000, DOC_PARAMS, None),                       # exactly recvWindow old: accepted
    (1499827319559 + 5001, DOC_PARAMS, "Timestamp for this request is outside of the recvWindow."),
    (1499827319559 - 999, DOC_PARAMS, None),                        # 999 ms ahead: accepted
    (1499827319559 - 1000, DOC_PARAMS, "Timestamp for this request was 1000ms ahead of the server's time."),
    (1499827319559 + 20000, DOC_PARAMS.replace("recvWindow=5000", "recvWindow=30000"), None),
    (1499827319559 + 20000, DOC_PARAMS.replace("&recvWindow=5000", ""), "Timestamp for this request is outside of the recvWindow."),
])
async def test_timing_security(session: aiohttp.ClientSession, server_ms: int, params: str, expected: str | None) -> None:
    settings = {"replay": False, "binance": {"accounts": [
        {"name": "docs", "api_key": DOC_API_KEY, "secret": DOC_SECRET, "balances": {"BTC": "10"}}]}}
    async with Simulator(settings, clock=ManualClock(server_ms * 1_000_000)) as sim:
        status, reply = await send(session, sim, "POST", body=signed(params))
    if expected is None:
        assert status == 200, reply
    else:
        assert (status, reply) == (400, {"code": -1021, "msg": expected})


async def test_recv_window_above_60000_is_refused(docs_sim: Simulator, session: aiohttp.ClientSession) -> None:
    status, reply = await send(session, docs_sim, "POST",
                               body=signed(DOC_PARAMS.replace("recvWindow=5000", "recvWindow=60001")))
    assert (status, reply["code"]) == (400, -1131)
