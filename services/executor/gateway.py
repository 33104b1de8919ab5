"""One venue call as the executor makes it: rate-limit lease, credentials, shared nonce,
sign, send through the one transport, correct the shared budget from usage headers,
parse. Every venue error comes back raised as its taxonomy class; a 429/418 blocks the
whole fleet first."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from schemas.vault import Credentials
from services.executor.credentials import CredentialsProvider, CredentialsUnavailable
from services.observability.alerts import AlertPublisher
from services.executor.ratelimit import RateLimiter
from services.executor.state import NonceSequences
from services.venues import rest_adapter
from services.venues.base import NON_IDEMPOTENT, FollowUp, RestAdapter
from services.venues.environments import TESTNETS, Endpoints, endpoints, require
from services.venues.errors import RateLimited, VenueError
from services.venues.http import HttpTransport

DEFAULT_BAN_S = 120.0
"""Fleet block after a 418 without Retry-After (Binance bans start at 2 minutes)."""
DEFAULT_BACKOFF_S = 10.0


class KeyEnvironmentMismatch(CredentialsUnavailable):
    """The key is for another environment than the venue's endpoints (a testnet key on live,
    a live key on a testnet): never used; the command ends with ``auth_error``."""


class VenueGateway:
    """Venue calls for one executor replica; ``venue_urls`` points venues elsewhere (simulator),
    ``environments`` puts venues on their testnet (services.venues.environments)."""

    def __init__(self, limiter: RateLimiter, credentials: CredentialsProvider, nonces: NonceSequences,
                 transport: HttpTransport, venue_urls: dict[str, str] | None = None,
                 environments: dict[str, str] | None = None) -> None:
        self.limiter = limiter
        self.credentials = credentials
        self.nonces = nonces
        self.transport = transport
        self.venue_urls = venue_urls or {}
        self.environments = environments or {}
        self._adapters: dict[str, RestAdapter] = {}
        self.calls = 0
        self.alerts: AlertPublisher | None = None
        """Where venue bans are alerted (alerts.critical.venue_banned)."""

    def environment(self, venue: str) -> str:
        """``live`` or ``testnet``: the venue's configured environment."""
        return self.environments.get(venue, "live")

    def endpoints(self, venue: str) -> Endpoints:
        return endpoints(venue, self.environment(venue), rest_url=self.venue_urls.get(venue))

    def adapter(self, venue: str) -> RestAdapter:
        """The venue's REST adapter on its environment's endpoints (ValueError for a venue
        without one; NoTestnet, a ValueError, for a testnet venue without test endpoints)."""
        adapter = self._adapters.get(venue)
        if adapter is None:
            where = self.endpoints(venue)
            base = require(venue, where.environment, "REST", where.rest_url)
            adapter = self._adapters[venue] = rest_adapter(venue, base, where.rest_headers)
        return adapter

    def private_stream_url(self, venue: str) -> str | None:
        """The private stream endpoint of the venue's environment; None: the adapter's own,
        or the host of an overridden REST URL (the simulator serves both). Raises NoTestnet
        when the venue's testnet has no private stream (its orders are then polled)."""
        where = self.endpoints(venue)
        return require(venue, where.environment, "private WebSocket", where.private_ws_url,
                       overridden=venue in self.venue_urls)

    async def credentials_for(self, venue: str, account: str) -> Credentials:
        """The account's credentials, refused (KeyEnvironmentMismatch) when the key's
        environment is not the venue's: a testnet key never reaches live endpoints, a live
        key never goes to a testnet."""
        creds = await self.credentials.get(venue, account)
        key_env = creds.environment
        venue_env = self.environment(venue)
        if key_env != venue_env:
            name = TESTNETS[venue].name if venue_env == "testnet" and venue in TESTNETS else ""
            where = f"{name} (testnet)" if name else venue_env
            raise KeyEnvironmentMismatch(
                f"{venue}/{account}: refused a {key_env} key on {venue}'s {where} endpoints "
                f"([venues.{venue}] environment = \"{venue_env}\"); register the account's {venue_env} key")
        return creds

    async def next_nonce(self, venue: str, creds: Credentials) -> int:
        """The key's next nonce from the fleet's shared sequence (REST calls and private
        stream logins of a key share it: Bitfinex)."""
        return await self.nonces.next(venue, hashlib.sha256(creds.api_key.encode()).hexdigest()[:16])

    async def call(self, venue: str, account: str, op: str, args: Any) -> Any:
        """Run ``op``; returns the parsed result or raises a VenueError (or LeaseTimeout,
        CredentialsUnavailable)."""
        adapter = self.adapter(venue)
        if op not in adapter.endpoints:
            raise ValueError(f"{venue} offers no {op} operation")
        await self.limiter.acquire(venue, account, adapter.rate_limits, adapter.cost(op, args))
        signed = adapter.endpoints[op].signed
        creds = await self.credentials_for(venue, account) if signed else None
        nonce = await self.next_nonce(venue, creds) if signed and adapter.shared_nonce and creds is not None else None
        request = adapter.build_request(op, args, creds, time.time_ns() // 1_000_000, nonce)
        self.calls += 1
        response = await self.transport.send(request, idempotent=op not in NON_IDEMPOTENT)
        headers = {k.lower(): v for k, v in response.headers.items()}
        await self.limiter.observe(venue, account, adapter.rate_limits, headers)
        result = adapter.parse_response(op, response.status, headers, response.body, args)
        if isinstance(result, RateLimited):
            wait = result.retry_after or (DEFAULT_BAN_S if result.banned else DEFAULT_BACKOFF_S)
            await self.limiter.block(venue, account, wait, reason=str(result))
            if result.banned and self.alerts is not None:
                named = account if account != "public" else None  # a public call: the IP is banned
                await self.alerts.alert("critical", "venue_banned", f"{venue} banned exbus's requests for {wait:g} s: {result}",
                                        venue=venue, account=named,
                                        details={"retry_after_s": f"{wait:g}", "status": str(response.status)})
            raise result
        if isinstance(result, VenueError):
            raise result
        if isinstance(result, FollowUp):  # the venue's answer takes another request
            return await self.call(venue, account, result.op, result.args)
        return result
