"""The shared REST adapter model: requests as data, endpoints and rate limits as data,
and the request/response skeleton every venue fills in.

A venue adapter is sans-IO (DESIGN.md): ``build_request`` returns an :class:`HttpRequest`
and ``parse_response`` turns (status, headers, body) into a schemas object or a
:class:`~services.venues.errors.VenueError` (returned, not raised). Only
``services.venues.http`` touches a socket.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import msgspec

from schemas.vault import Credentials
from services.venues.errors import OutcomeUnknown, RateLimited, VenueError, VenueUnavailable
from services.venues.signing import hmac_hex

Operation = Literal[
    "ticker", "orderbook", "place_order", "cancel_order", "order_status", "open_orders",
    "balance", "trade_history", "instruments",
]
NON_IDEMPOTENT: frozenset[str] = frozenset({"place_order", "cancel_order"})
"""Operations a blind retry could execute twice: a lost answer is OutcomeUnknown."""

Params = list[tuple[str, Any]]
"""Raw request parameters in order; values are strings, except where a venue's JSON body
nests objects (Coinbase order_configuration)."""

_json = msgspec.json.Decoder(float_hook=Decimal)


class HttpRequest(msgspec.Struct, frozen=True):
    """One HTTP request, fully signed, ready for the transport."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None

    def __repr__(self) -> str:  # headers carry keys and signatures
        return f"HttpRequest({self.method} {self.url.split('?')[0]}, {len(self.body or b'')} body bytes)"


class CancelAccepted(msgspec.Struct, frozen=True, kw_only=True):
    """A cancel the venue accepted without returning the order (Kraken, OKX, Bitfinex):
    the order's final state arrives by status query or the private stream."""

    client_order_id: str
    venue_order_id: str | None = None


class FollowUp(msgspec.Struct, frozen=True):
    """An answer that does not settle the operation yet: the caller sends ``op`` (another of
    the adapter's endpoints) with ``args`` next and takes that answer instead. For venues that
    spread one answer over several endpoints (Bitfinex: the active orders, then the order
    history). Each request of the chain takes its own lease."""

    op: str
    args: Any = None


class Endpoint(msgspec.Struct, frozen=True):
    """Where an operation goes and what it costs against the venue's limits."""

    method: str
    path: str
    signed: bool
    cost: dict[str, int] = {}
    """Rate-limit name -> units this call consumes (e.g. {"weight": 4})."""


class RateLimit(msgspec.Struct, frozen=True):
    """One of the venue's documented limits: ``capacity`` units per ``period_s``,
    counted per ``scope`` (egress IP, account, or API key)."""

    name: str
    capacity: int
    period_s: float
    scope: Literal["ip", "account", "api_key"]
    usage_header: str | None = None
    """Response header reporting usage of this limit, if the venue sends one."""
    usage_reports: Literal["used", "remaining"] = "used"
    """Whether ``usage_header`` counts units used (Binance) or units left (Upbit)."""
    group: str | None = None
    """The venue's name for this limit inside a shared header (Upbit ``group=order``)."""


def percent_encode(params: Params) -> str:
    """``k=v&...`` in the given order, RFC 3986 percent-encoding (spaces as %20)."""
    return "&".join(f"{quote(str(k), safe='')}={quote(str(v), safe='')}" for k, v in params)


def decimal_text(value: Any) -> str:
    """A Decimal in plain notation (no exponent), as venues expect in parameters."""
    text = format(value, "f")
    return text


class RestAdapter:
    """Base of every venue's REST adapter. A venue declares its data (``venue``,
    ``base_url``, ``endpoints``, ``rate_limits``) and implements ``sign``,
    ``params_<op>``, ``parse_<op>`` and ``error``; this class does the rest."""

    venue: ClassVar[str]
    base_url: ClassVar[str]
    endpoints: ClassVar[dict[str, Endpoint]]
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    shared_nonce: ClassVar[bool] = False
    """The venue wants a strictly increasing nonce per API key (Kraken, Bitfinex): every
    replica using the key must draw from one shared sequence (the executor passes it in)."""

    def __init__(self, base_url: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.url = (base_url or type(self).base_url).rstrip("/")
        self.headers = dict(headers or {})
        """Added to every request (a test environment's, services.venues.environments)."""

    # --- what a venue implements -------------------------------------------------
    def sign(self, method: str, path: str, params: Params, creds: Credentials, time_ms: int,
             nonce: str | int | None) -> HttpRequest:
        """The signed request for raw ``params`` (query for GET/DELETE, body otherwise)."""
        raise NotImplementedError

    def error(self, status: int, headers: dict[str, str], payload: Any, op: str) -> VenueError | None:
        """The VenueError for an error reply, or None when the reply is a success."""
        raise NotImplementedError

    def cost(self, op: str, args: Any) -> dict[str, int]:
        """Rate-limit units one call of ``op`` consumes (venues with variable weights override)."""
        return dict(self.endpoints[op].cost)

    def params_for(self, op: str, args: Any, now_ms: int) -> Params:
        """Raw parameters of ``op`` (``params_<op>(args)``; venues needing the clock override)."""
        return getattr(self, f"params_{op}")(args)

    def venue_client_order_id(self, client_order_id: str) -> str:
        """The client order id as the venue sees it (venues with narrower id formats map
        exbus's id deterministically: Bitfinex's integer cid, OKX's and Kraken's hashed ids)."""
        return client_order_id

    def path_for(self, op: str, args: Any) -> str:
        """The request path of ``op`` (venues with ids in the path override this)."""
        return self.endpoints[op].path

    # --- shared machinery ------------------------------------------------------------
    def hmac_query_request(self, method: str, path: str, params: Params, secret: str,
                           headers: dict[str, str]) -> HttpRequest:
        """The HMAC-SHA256 query recipe Binance and Korbit share: hex HMAC of the
        percent-encoded parameters (a ``timestamp`` among them) appended as ``signature``;
        in the query for GET/DELETE, a form body otherwise."""
        payload = percent_encode(params)
        signed = f"{payload}&signature={hmac_hex(secret, payload)}"
        if method in ("GET", "DELETE"):
            return HttpRequest(method, f"{self.url}{path}?{signed}", headers)
        return HttpRequest(method, f"{self.url}{path}",
                           {**headers, "Content-Type": "application/x-www-form-urlencoded"}, signed.encode())

    def public_request(self, method: str, path: str, params: Params) -> HttpRequest:
        query = percent_encode(params)
        return HttpRequest(method, f"{self.url}{path}{'?' + query if query else ''}", {})

    def build_request(self, op: str, args: Any, creds: Credentials | None, now_ms: int,
                      nonce: str | int | None = None) -> HttpRequest:
        """The request for operation ``op`` with schemas ``args``; ``now_ms`` and ``nonce``
        replace the clock and any random/counter nonce."""
        endpoint = self.endpoints.get(op)
        if endpoint is None:
            raise ValueError(f"{self.venue} has no operation {op!r}")
        params = self.params_for(op, args, now_ms)
        path = self.path_for(op, args)
        if not endpoint.signed:
            request = self.public_request(endpoint.method, path, params)
        elif creds is None:
            raise ValueError(f"{self.venue} {op} needs credentials")
        else:
            request = self.sign(endpoint.method, path, params, creds, now_ms, nonce)
        if self.headers:
            request = msgspec.structs.replace(request, headers={**request.headers, **self.headers})
        return request

    def parse_response(self, op: str, status: int, headers: dict[str, str], body: bytes,
                       args: Any = None) -> Any:
        """A schemas object (or list/dict of them) for a success, a VenueError otherwise."""
        payload = self.reply_payload(op, status, headers, body)
        if isinstance(payload, VenueError):
            return payload
        try:
            return getattr(self, f"parse_{op}")(payload, args)
        except (KeyError, TypeError, ValueError, IndexError, msgspec.ValidationError) as e:
            return self.undecodable(op, status, body, reason=f"{type(e).__name__}: {e}")

    def reply_payload(self, op: str, status: int, headers: dict[str, str], body: bytes) -> Any:
        """The decoded JSON of a reply (exact Decimals), or the VenueError it maps to by the
        HTTP status and the venue's own error codes."""
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            # JSON numbers become exact Decimals from their text, never floats
            payload = _json.decode(body) if body else None
        except msgspec.DecodeError:
            payload = None
            if status < 400:
                return self.undecodable(op, status, body)
        err = self.error(status, headers, payload, op)
        if err is None and status >= 400:
            err = self.http_error(op, status, headers, body)
        if err is not None:
            err.venue = err.venue or self.venue
            err.status = status
            return err
        return payload

    def undecodable(self, op: str, status: int, body: bytes, reason: str = "not JSON") -> VenueError:
        """A 2xx reply exbus cannot read: for place/cancel the outcome is unknown."""
        message = f"{self.venue} {op}: unreadable reply ({reason}): {body[:120]!r}"
        if op in NON_IDEMPOTENT:
            return OutcomeUnknown(message, venue=self.venue, status=status)
        return VenueUnavailable(message, venue=self.venue, status=status)

    def http_error(self, op: str, status: int, headers: dict[str, str], body: bytes) -> VenueError:
        """Status-only mapping shared by every venue: 429/418, 5xx, the rest."""
        text = body[:200].decode(errors="replace")
        if status in (429, 418):
            return RateLimited(f"{self.venue}: HTTP {status}: {text}", retry_after=retry_after(headers),
                               banned=status == 418, venue=self.venue)
        if status >= 500:
            if op in NON_IDEMPOTENT:
                return OutcomeUnknown(f"{self.venue}: HTTP {status} on {op}: {text}", venue=self.venue)
            return VenueUnavailable(f"{self.venue}: HTTP {status}: {text}", venue=self.venue)
        return VenueError(f"{self.venue}: HTTP {status}: {text}", venue=self.venue)


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from a Retry-After header (lower-cased keys), if present and numeric."""
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


__all__ = [
    "CancelAccepted", "Endpoint", "FollowUp", "HttpRequest", "NON_IDEMPOTENT", "Operation", "Params", "RateLimit", "RestAdapter",
    "decimal_text", "percent_encode", "retry_after",
]
