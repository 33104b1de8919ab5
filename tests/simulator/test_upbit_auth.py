"""Upbit JWT verification.

Sources: docs.upbit.com "인증" (authentication: JWT payload access_key, nonce, query_hash =
SHA512 of the query string, query_hash_alg; the docs' example token header is HS512, ccxt
4.5.90 signs HS256) and "REST API 사용 및 에러 안내" (error names: invalid_query_payload,
jwt_verification, nonce_used, ...). The fixed-nonce vector is the derived (not official)
one of research/execution.md section 2.3 (ccxt sign() == independent hashlib code).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import jwt
import pytest

from services.simulator import Simulator

BOB_KEY, BOB_SECRET = "bob-access", "bob-secret-" + "x" * 64
pytestmark = [
    pytest.mark.sim(upbit={"accounts": [
        {"name": "alice", "api_key": "ACCESS", "secret": "SECRETKEY", "balances": {"KRW": "1000000"}},
        {"name": "bob", "api_key": BOB_KEY, "secret": BOB_SECRET, "balances": {"KRW": "1000000"}},
    ]}),
    # the research vector's secret is 9 bytes; PyJWT warns about short HMAC keys when signing
    pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
]


def token(payload: dict[str, Any], secret: str = "SECRETKEY", alg: str = "HS256") -> str:
    return jwt.encode(payload, secret, algorithm=alg)


def test_the_derived_vector_matches_research() -> None:
    """access ACCESS, secret SECRETKEY, nonce 00000000-0000-4000-8000-000000000000, query
    ``uuid=abc&identifier=my-id-1``, HS256 -> signature 3BUunvFx... (research/execution.md 2.3)."""
    query = "uuid=abc&identifier=my-id-1"
    qh = hashlib.sha512(query.encode()).hexdigest()
    assert qh.startswith("3bbba196") and qh.endswith("e226f5")
    t = token({"access_key": "ACCESS", "nonce": "00000000-0000-4000-8000-000000000000",
               "query_hash": qh, "query_hash_alg": "SHA512"})
    assert t.rsplit(".", 1)[1] == "3BUunvFxuLmn4kFhLBT7YHy-bDXr4UHLsgnuv1BuUvE"


async def call(upbit: Any, method: str, path: str, t: str, params: dict | None = None, body: dict | None = None):
    return await upbit.request(method, path, params=params, body=body, token=t)


@pytest.mark.parametrize("alg", ["HS256", "HS512"])
async def test_both_algorithms_are_accepted_without_parameters(upbit: Any, alg: str) -> None:
    reply = await call(upbit, "GET", "/v1/accounts", token({"access_key": "ACCESS", "nonce": str(uuid.uuid4())}, alg=alg))
    assert reply.status == 200, reply
    assert reply.json == [{"currency": "KRW", "balance": "1000000.0", "locked": "0.0", "avg_buy_price": "0",
                           "avg_buy_price_modified": False, "unit_currency": "KRW"}]


async def test_the_fixed_vector_request_is_accepted_once(upbit: Any) -> None:
    """The derived vector's token verifies (the order does not exist: 404 order_not_found); the
    same token again is refused: its nonce is used."""
    query = "uuid=abc&identifier=my-id-1"
    t = token({"access_key": "ACCESS", "nonce": "00000000-0000-4000-8000-000000000000",
               "query_hash": hashlib.sha512(query.encode()).hexdigest(), "query_hash_alg": "SHA512"})
    first = await call(upbit, "GET", "/v1/order", t, params={"uuid": "abc", "identifier": "my-id-1"})
    assert (first.status, first.json["error"]["name"]) == (404, "order_not_found")
    again = await call(upbit, "GET", "/v1/order", t, params={"uuid": "abc", "identifier": "my-id-1"})
    assert (again.status, again.json["error"]["name"]) == (401, "nonce_used")


async def test_a_json_body_is_hashed_as_its_query_string(upbit: Any) -> None:
    body = {"market": "KRW-LAMB", "side": "bid", "volume": "100", "price": "100", "ord_type": "limit",
            "identifier": "auth-1"}
    query = "market=KRW-LAMB&side=bid&volume=100&price=100&ord_type=limit&identifier=auth-1"
    t = token({"access_key": "ACCESS", "nonce": str(uuid.uuid4()),
               "query_hash": hashlib.sha512(query.encode()).hexdigest(), "query_hash_alg": "SHA512"}, alg="HS512")
    reply = await call(upbit, "POST", "/v1/orders", t, body=body)
    assert reply.status == 201, reply
    assert reply.json["identifier"] == "auth-1"


async def test_array_parameters_hash_with_brackets(upbit: Any) -> None:
    """``states[]=wait&states[]=watch`` (the docs' unquote(urlencode(params, doseq=True)))."""
    query = "states[]=wait&states[]=watch"
    t = token({"access_key": "ACCESS", "nonce": str(uuid.uuid4()),
               "query_hash": hashlib.sha512(query.encode()).hexdigest(), "query_hash_alg": "SHA512"})
    reply = await call(upbit, "GET", "/v1/orders/open", t, params={"states[]": ["wait", "watch"]})
    assert (reply.status, reply.json) == (200, [])


def good_hash(query: str) -> dict[str, str]:
    return {"query_hash": hashlib.sha512(query.encode()).hexdigest(), "query_hash_alg": "SHA512"}


@pytest.mark.parametrize("case, make, expected", [
    ("no header", None, (401, "no_authorization_token")),
    ("wrong secret", lambda: token({"access_key": "ACCESS", "nonce": str(uuid.uuid4())} | good_hash("uuid=x"),
                                   secret="not-the-secret"), (401, "jwt_verification")),
    ("unknown access key", lambda: token({"access_key": "NOPE", "nonce": str(uuid.uuid4())}), (401, "invalid_access_key")),
    ("query hash of other params", lambda: token({"access_key": "ACCESS", "nonce": str(uuid.uuid4())} | good_hash("uuid=y")),
     (401, "invalid_query_payload")),
    ("no query hash", lambda: token({"access_key": "ACCESS", "nonce": str(uuid.uuid4())}), (401, "invalid_query_payload")),
    ("no nonce", lambda: token({"access_key": "ACCESS"} | good_hash("uuid=x")), (401, "jwt_verification")),
    ("unsigned (alg none)", lambda: jwt.encode({"access_key": "ACCESS", "nonce": str(uuid.uuid4())} | good_hash("uuid=x"),
                                               None, algorithm="none"), (401, "jwt_verification")),
    ("not a JWT", lambda: "garbage", (401, "jwt_verification")),
])
async def test_bad_tokens_get_upbits_errors(sim: Simulator, session: Any, case: str, make: Any, expected: tuple) -> None:
    headers = {} if make is None else {"Authorization": f"Bearer {make()}"}
    async with session.get(sim.upbit_url + "/v1/order?uuid=x", headers=headers) as r:
        body = await r.json()
    assert (r.status, body["error"]["name"]) == expected, case
    assert set(body["error"]) == {"name", "message"}


async def test_another_accounts_token_does_not_open_this_accounts_orders(upbit: Any, upbit_b: Any) -> None:
    upbit.access_key, upbit.secret = "ACCESS", "SECRETKEY"
    upbit_b.access_key, upbit_b.secret = BOB_KEY, BOB_SECRET
    placed = await upbit.order(market="KRW-LAMB", side="bid", volume="100", price="100", ord_type="limit")
    assert placed.status == 201, placed
    other = await upbit_b.request("GET", "/v1/order", params={"uuid": placed.json["uuid"]})
    assert (other.status, other.json["error"]["name"]) == (404, "order_not_found")
