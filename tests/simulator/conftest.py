"""Fixtures for the simulator tests: a simulator on free loopback ports with a manual
clock, and venue clients that sign requests the way the venues' docs define it (written
here with hashlib, hmac and PyJWT, independent of exbus's venue adapters):

- Binance (binance-spot-api-docs rest-api.md, "SIGNED Endpoint security"): HMAC-SHA256 of
  query string + body with the secret key, hex, as ``signature``; ``X-MBX-APIKEY`` header.
- Upbit (docs.upbit.com "인증" / authentication): JWT with access_key, nonce and, when there
  are parameters, query_hash = SHA512 hex of the query string, query_hash_alg SHA512.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from typing import Any, AsyncIterator
from urllib.parse import urlencode

import aiohttp
import jwt
import pytest

from services.simulator import ManualClock, Simulator

START_NS = 1_800_000_000 * 1_000_000_000 + 1_000_000_000
"""A manual clock start one second into a minute (and a 10 s window), so windows are predictable."""

BINANCE_KEY, BINANCE_SECRET = "test-binance-key-A", "test-binance-secret-A-0123456789abcdef0123456789abcdef"
BINANCE_KEY_B, BINANCE_SECRET_B = "test-binance-key-B", "test-binance-secret-B-0123456789abcdef0123456789abcdef"
UPBIT_KEY, UPBIT_SECRET = "test-upbit-access-A", "test-upbit-secret-A-0123456789abcdef0123456789abcdef0123456789abcd"
UPBIT_KEY_B, UPBIT_SECRET_B = "test-upbit-access-B", "test-upbit-secret-B-0123456789abcdef0123456789abcdef0123456789abcd"


def sim_settings(**overrides: Any) -> dict[str, Any]:
    """Two accounts per venue, still books (no replay) unless overridden."""
    settings: dict[str, Any] = {
        "replay": False,
        "binance": {"accounts": [
            {"name": "alice", "api_key": BINANCE_KEY, "secret": BINANCE_SECRET,
             "balances": {"USDT": "10000", "NKN": "50000", "BTC": "1", "ETH": "10", "BLZ": "100000"}},
            {"name": "bob", "api_key": BINANCE_KEY_B, "secret": BINANCE_SECRET_B,
             "balances": {"USDT": "10000", "NKN": "50000"}},
        ]},
        "upbit": {"accounts": [
            {"name": "alice", "api_key": UPBIT_KEY, "secret": UPBIT_SECRET,
             "balances": {"KRW": "10000000", "LAMB": "100000", "BTC": "1"}},
            {"name": "bob", "api_key": UPBIT_KEY_B, "secret": UPBIT_SECRET_B,
             "balances": {"KRW": "10000000", "LAMB": "100000"}},
        ]},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = settings[key] | value
        else:
            settings[key] = value
    return settings


class Reply:
    """A venue answer: status, headers, decoded JSON (None if the body is not JSON), raw body."""

    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        import json
        self.status, self.headers, self.raw = status, headers, body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self) -> str:
        return f"Reply({self.status}, {self.raw[:300]!r})"


class BinanceClient:
    def __init__(self, session: aiohttp.ClientSession, base: str, clock: ManualClock,
                 api_key: str = BINANCE_KEY, secret: str = BINANCE_SECRET) -> None:
        self.session, self.base, self.clock, self.api_key, self.secret = session, base, clock, api_key, secret

    @staticmethod
    def sign(secret: str, total_params: str) -> str:
        return hmac.new(secret.encode(), total_params.encode(), hashlib.sha256).hexdigest()

    async def raw(self, method: str, path: str, query: str = "", body: str = "",
                  headers: dict[str, str] | None = None, timeout: float | None = None) -> Reply:
        url = self.base + path + (f"?{query}" if query else "")
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"} | (headers or {})
        kwargs: dict[str, Any] = {"data": body.encode() if body else None, "headers": hdrs}
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(method, url, **kwargs) as r:
            return Reply(r.status, r.headers, await r.read())

    async def public(self, path: str, **params: Any) -> Reply:
        return await self.raw("GET", path, urlencode(params))

    async def signed(self, method: str, path: str, params: dict[str, Any] | None = None, *,
                     in_body: bool | None = None, timestamp: int | None = None, **kw: Any) -> Reply:
        """A SIGNED request; parameters in the body for POST/DELETE/PUT, else in the query."""
        p = dict(params or {})
        p["timestamp"] = self.clock.ms() if timestamp is None else timestamp
        total = urlencode(p)
        total += "&signature=" + self.sign(self.secret, total)
        in_body = method != "GET" if in_body is None else in_body
        headers = {"X-MBX-APIKEY": self.api_key}
        if in_body:
            return await self.raw(method, path, body=total, headers=headers, **kw)
        return await self.raw(method, path, query=total, headers=headers, **kw)

    async def order(self, **params: Any) -> Reply:
        return await self.signed("POST", "/api/v3/order", params)


class UpbitClient:
    def __init__(self, session: aiohttp.ClientSession, base: str,
                 access_key: str = UPBIT_KEY, secret: str = UPBIT_SECRET) -> None:
        self.session, self.base, self.access_key, self.secret = session, base, access_key, secret

    @staticmethod
    def token(access_key: str, secret: str, query: str | None = None, *, alg: str = "HS512",
              nonce: str | None = None) -> str:
        """The docs' token: payload access_key, nonce (uuid4), query_hash (SHA512 hex) + query_hash_alg."""
        payload: dict[str, Any] = {"access_key": access_key, "nonce": nonce or str(uuid.uuid4())}
        if query:
            payload["query_hash"] = hashlib.sha512(query.encode()).hexdigest()
            payload["query_hash_alg"] = "SHA512"
        return jwt.encode(payload, secret, algorithm=alg)

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                      body: dict[str, Any] | None = None, token: str | None = None,
                      timeout: float | None = None) -> Reply:
        query = urlencode(params or {}, doseq=True)
        if token is None:
            hashed = query or ("&".join(f"{k}={v}" for k, v in body.items()) if body else None)
            token = self.token(self.access_key, self.secret, hashed)
        kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
        if body is not None:
            kwargs["json"] = body
        if timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
        async with self.session.request(method, self.base + path + (f"?{query}" if query else ""), **kwargs) as r:
            return Reply(r.status, r.headers, await r.read())

    async def public(self, path: str, **params: Any) -> Reply:
        async with self.session.get(self.base + path, params=params) as r:
            return Reply(r.status, r.headers, await r.read())

    async def order(self, **body: Any) -> Reply:
        return await self.request("POST", "/v1/orders", body=body)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START_NS)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sim(**settings): simulator settings for this test (merged per section)")


@pytest.fixture
def settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Simulator settings: the defaults above, merged with a test's ``@pytest.mark.sim(...)``."""
    marker = request.node.get_closest_marker("sim")
    return sim_settings(**(marker.kwargs if marker else {}))


@pytest.fixture
async def sim(settings: dict[str, Any], clock: ManualClock) -> AsyncIterator[Simulator]:
    async with Simulator(settings, clock=clock) as simulator:
        yield simulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def binance(sim: Simulator, session: aiohttp.ClientSession, clock: ManualClock) -> BinanceClient:
    return BinanceClient(session, sim.binance_url, clock)


@pytest.fixture
def binance_b(sim: Simulator, session: aiohttp.ClientSession, clock: ManualClock) -> BinanceClient:
    return BinanceClient(session, sim.binance_url, clock, BINANCE_KEY_B, BINANCE_SECRET_B)


@pytest.fixture
def upbit(sim: Simulator, session: aiohttp.ClientSession) -> UpbitClient:
    return UpbitClient(session, sim.upbit_url)


@pytest.fixture
def upbit_b(sim: Simulator, session: aiohttp.ClientSession) -> UpbitClient:
    return UpbitClient(session, sim.upbit_url, UPBIT_KEY_B, UPBIT_SECRET_B)


@pytest.fixture
def read_ledger(sim: Simulator, session: aiohttp.ClientSession) -> Any:
    """``await read_ledger()``: the body of GET /__sim/ledger."""
    async def read() -> dict[str, Any]:
        async with session.get(sim.binance_url + "/__sim/ledger") as r:
            assert r.status == 200
            return await r.json()
    return read
