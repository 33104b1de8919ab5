"""What a venue dialect is: the venue's REST routes, its authentication check and its
reply formats over the venue-neutral :class:`~services.simulator.core.VenueCore`.

A dialect module (``services/simulator/dialects/<venue>.py``) declares

- ``ROUTES``: :class:`Route` rows (method, path, handler name, signed or not, the rate
  limits it counts against, ``place``/``cancel`` for fault rules);
- ``LIMITS``: the venue's documented rate limits as :class:`Limit` rows (requests,
  request weights per route, or orders per account through the core's order gate);
- ``MARKETS``, ``DEFAULT_ACCOUNTS``, fees and the client-order-id policy;

and implements ``authenticate`` (from the venue's docs, never with exbus's own signer),
``refuse`` (a :class:`~services.simulator.core.Refusal` in the venue's status, body and
headers) and one handler per route. :meth:`Dialect.dispatch` does the rest: read the
request, count it against its limits (429 with the venue's refusal, bans for clients that
do not back off), authenticate, call the handler, render.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, ClassVar, Literal
from urllib.parse import parse_qsl

from aiohttp import web

from services.simulator.clock import Clock
from services.simulator.config import Account, BanPolicy, VenueSettings
from services.simulator.core import ClientIdPolicy, MarketSpec, Refusal, VenueCore, replayed_books
from services.simulator.ledger import Ledger
from services.simulator.limits import RateLimits, Scope, Window
from services.simulator.matching import FeeModel, Order
from services.simulator.streams import Hub
from services.simulator.venue import encode


@dataclass(frozen=True)
class Limit:
    """A documented rate limit: ``capacity`` requests per fixed ``interval_s`` window, per
    ``scope`` (the client's IP or the authenticated account)."""

    capacity: int
    interval_s: int
    scope: Literal["ip", "account"]
    counts: Literal["requests", "weight", "orders"] = "requests"
    """What fills the window: one per request; the route's ``weight`` per request (Binance
    REQUEST_WEIGHT); or one per order placed (account scope; counted by the core's order
    gate, not per request, and given back when matching refuses the order)."""
    enforced: bool = True
    """False: usage is only tallied (the ledger shows it), never refused."""
    refund_on_fill: bool = False
    """An ``orders`` limit whose count goes down by one on an order's first fill (Binance
    ORDERS_10S/1D, faqs/order_count_decrement.md)."""
    window: str = ""
    """The window's name in the scope and the ledger ("" = the limit's name); lets two
    limits of different scopes show under one name."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """aiohttp path pattern (``/v2/ticker/{symbol}``)."""
    handler: str
    """Name of the dialect method: ``async def handler(self, req) -> Any``."""
    signed: bool = False
    limits: tuple[str, ...] = ()
    kind: Literal["place", "cancel"] | None = None
    weight: int | Callable[["Req"], int] = 1
    """What the request counts against ``weight`` limits (a number, or computed from the
    request: Binance's depth weight grows with ``limit``)."""
    decimals_as_numbers: bool | None = None
    """Decimals in this route's replies as JSON numbers (None: the dialect's default)."""


@dataclass
class Req:
    """One request being handled."""

    request: web.Request
    method: str
    path: str
    raw_query: str
    body: bytes
    now: int
    """Nanoseconds, the simulator's clock."""
    account: Account | None = None
    headers: dict[str, str] = field(default_factory=dict)
    """Headers to add to the reply (usage headers, ...)."""
    route: Route | None = None
    params: dict[str, Any] = field(default_factory=dict)
    """Parameters as the dialect read them (e.g. while authenticating)."""

    @property
    def match(self) -> dict[str, str]:
        return dict(self.request.match_info)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw_query, keep_blank_values=True))

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.text, keep_blank_values=True))

    def json(self) -> Any:
        """The body as JSON with numbers kept as their text (Decimal-exact); {} for none."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body, parse_float=Decimal, parse_int=Decimal)
        except ValueError:
            raise Refusal("bad_request", "the request body is not JSON") from None


class Dialect:
    """Base of a venue dialect; the server treats every dialect alike."""

    name: ClassVar[str]
    ROUTES: ClassVar[list[Route]]
    LIMITS: ClassVar[dict[str, Limit]] = {}
    MARKETS: ClassVar[list[MarketSpec]]
    DEFAULT_ACCOUNTS: ClassVar[list[Account]]
    MAKER_FEE: ClassVar[Decimal] = Decimal("0.001")
    TAKER_FEE: ClassVar[Decimal] = Decimal("0.002")
    FEE_IN_QUOTE: ClassVar[bool] = True
    CLIENT_IDS: ClassVar[ClientIdPolicy] = "open"
    DECIMALS_AS_NUMBERS: ClassVar[bool] = False
    """Whether Decimals in replies are JSON numbers (else strings)."""
    WEBSOCKET: ClassVar[bool] = False
    """Whether the dialect serves WebSocket routes (then the server prints ``<VENUE>_WS_URL``)."""
    READS_RECORDED: ClassVar[bool] = False
    """Whether the constructor takes ``recorded=`` (the recorded-data directory) to build its
    markets and books from the venue's recordings."""

    def __init__(self, settings: VenueSettings, clock: Clock, ledger: Ledger, ban: BanPolicy) -> None:
        self.settings = settings
        self.clock = clock
        self.ledger = ledger
        self.limits = RateLimits(ban)
        self.hub = Hub()
        fees = self.fee_model(settings)
        self.core = VenueCore(self.name, {m.symbol: m for m in self.MARKETS}, settings.accounts or self.DEFAULT_ACCOUNTS,
                              fees, clock, ledger, self.CLIENT_IDS)
        if any(limit.counts == "orders" for limit in self.LIMITS.values()):
            self.core.order_gate, self.core.order_refund = self._count_order, self._refund_order
            self.core.listeners.append(self._credit_first_fill)
        self.core.seed_books(self.initial_books())
        self._routes = {(r.method, r.path): r for r in self.ROUTES}
        self._tasks: list[asyncio.Task[Any]] = []

    # -- what a dialect implements -------------------------------------------------------

    async def authenticate(self, req: Req) -> Account:
        """Verify the request as the venue documents it; raise Refusal (bad_key,
        bad_signature, expired, nonce) otherwise."""
        raise NotImplementedError

    def refuse(self, refusal: Refusal, req: Req) -> tuple[int, Any, dict[str, str]]:
        """The venue's (status, JSON body, headers) for a refusal."""
        raise NotImplementedError

    def server_error(self, status: int) -> Any:
        """The venue's JSON body for an injected 5xx (maintenance, overload)."""
        return {"error": "internal error"} if status != 503 else {"error": "service unavailable"}

    def fee_model(self, settings: VenueSettings) -> FeeModel:
        """The venue's fees: the settings' rates, else the class defaults."""
        return FeeModel(maker=lambda m: settings.maker_fee if settings.maker_fee is not None else self.MAKER_FEE,
                        taker=lambda m: settings.taker_fee if settings.taker_fee is not None else self.TAKER_FEE,
                        in_quote=self.FEE_IN_QUOTE)

    def capacity(self, name: str) -> int:
        """A limit's capacity: the settings' override, else ``LIMITS``."""
        return self.settings.rate_limits.get(name, self.LIMITS[name].capacity)

    def initial_books(self) -> dict[str, Any]:
        """(bids, asks) per exbus symbol: the replayed market data by default."""
        return replayed_books(self.name)

    def usage_headers(self, req: Req, windows: list[tuple[Limit, Window]]) -> dict[str, str]:
        """Usage headers the venue sends on every reply (none by default)."""
        return {}

    def add_ws_routes(self, app: web.Application) -> None:
        """WebSocket routes, for dialects that serve them."""

    # -- the server's interface -------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        for route in self.ROUTES:
            app.router.add_route(route.method, route.path, self.dispatch)
        self.add_ws_routes(app)

    def route_kind(self, method: str, path: str) -> str | None:
        route = self._route_of(method, path)
        return route.kind if route else None

    def error_body(self, status: int) -> bytes:
        return encode(self.server_error(status))

    def start_replay(self, speed: float) -> None:
        """Market-data replay for a dialect's WebSocket (none by default)."""

    def usage(self) -> dict[str, Any]:
        return self.limits.snapshot(self.clock())

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.hub.close_all()

    def now_ms(self) -> int:
        return self.clock() // 1_000_000

    # -- dispatch -------------------------------------------------------------------------

    def _route_of(self, method: str, path: str) -> Route | None:
        route = self._routes.get((method, path))
        if route is not None:
            return route
        for r in self.ROUTES:  # patterns with {parameters}
            if r.method == method and "{" in r.path and _matches(r.path, path):
                return r
        return None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        route = self._route_of(request.method, request.path)
        assert route is not None
        body = await request.read() if request.can_read_body else b""
        req = Req(request, request.method, request.path, request.rel_url.raw_query_string, body, self.clock(),
                  route=route)
        windows: list[tuple[Limit, Window]] = []
        try:
            self._admit(req, route, "ip", windows)
            if route.signed:
                try:
                    req.account = await self.authenticate(req)
                except Refusal:
                    if req.account is not None:  # the key is known: the request counts for it (Binance)
                        self._admit(req, route, "account", windows)
                    raise
                self._admit(req, route, "account", windows)
            result = await getattr(self, route.handler)(req)
            status = 200
            if isinstance(result, Reply):
                req.headers.update(result.headers)
                result, status = result.body, result.status
        except Refusal as refusal:
            status, result, headers = self.refuse(refusal, req)
            req.headers.update(headers)
        req.headers.update(self.usage_headers(req, windows))
        numbers = self.DECIMALS_AS_NUMBERS if route.decimals_as_numbers is None else route.decimals_as_numbers
        return web.Response(status=status, body=encode(result, decimals_as_numbers=numbers),
                            content_type="application/json", headers=req.headers)

    def _admit(self, req: Req, route: Route, scope_kind: str, windows: list[tuple[Limit, Window]]) -> None:
        """Count the request against the route's limits of one scope kind; 429 over a
        limit, 418-style ban for a client that keeps going while told to back off."""
        names = [n for n in route.limits if self.LIMITS[n].scope == scope_kind and self.LIMITS[n].counts != "orders"]
        if not names:
            return
        key = f"ip:{req.request.remote}" if scope_kind == "ip" else f"account:{req.account.name}"  # type: ignore[union-attr]
        scope = self.limits.scope(key)
        ban = scope.arrive(req.now)
        if ban:
            raise Refusal("banned", f"banned for {ban} s after ignoring rate limits", retry_after=ban)
        over: Window | None = None
        over: str | None = None
        amounts = []
        for name in names:
            limit = self.LIMITS[name]
            window = scope.window(limit.window or name, self.capacity(name), limit.interval_s, enforced=limit.enforced)
            windows.append((limit, window))
            amount = 1
            if limit.counts == "weight":
                amount = route.weight(req) if callable(route.weight) else route.weight
            amounts.append(amount)
            if over is None and limit.enforced and not window.fits(req.now, amount):
                over, over_window = name, window
        for (_, window), amount in zip(windows[-len(names):], amounts):
            window.add(req.now, amount)
        if over is not None:
            retry_after = self._limited(scope, over_window, req.now)
            refusal = Refusal("rate_limited", f"over {over_window.limit} requests per {over_window.interval_s} s",
                              retry_after=retry_after)
            refusal.limit = over
            raise refusal

    @staticmethod
    def _limited(scope: Scope, window: Window, now: int) -> int:
        return scope.limited(now, window)

    # -- order-count limits (``Limit(counts="orders")``), through the core's order gate ----

    def order_windows(self, account: str) -> list[tuple[str, Window]]:
        """The account's order-count windows, by limit name."""
        scope = self.limits.scope(f"account:{account}")
        return [(name, scope.window(limit.window or name, self.capacity(name), limit.interval_s))
                for name, limit in self.LIMITS.items() if limit.counts == "orders"]

    def _count_order(self, order: Order) -> None:
        now = self.clock()
        windows = self.order_windows(order.account)
        for name, window in windows:
            if not window.fits(now, 1):  # refused without a back-off: new orders only wait for the window
                self.limits.scope(f"account:{order.account}").limited(now, window, backoff=False)
                refusal = Refusal("rate_limited", f"over {window.limit} orders per {window.interval_s} s")
                refusal.limit = name
                raise refusal
        for _, window in windows:
            window.add(now, 1)

    def _refund_order(self, order: Order) -> None:
        for _, window in self.order_windows(order.account):
            window.sub(self.clock(), 1)

    def _credit_first_fill(self, order: Order, fill: Any, kind: str) -> None:
        if fill is not None and len(order.fills) == 1:
            for name, window in self.order_windows(order.account):
                if self.LIMITS[name].refund_on_fill:
                    window.sub(self.clock(), 1)


@dataclass
class Reply:
    """A handler's answer other than ``200`` with a JSON body."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def _matches(pattern: str, path: str) -> bool:
    a, b = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(a) == len(b) and all(x == y or (x.startswith("{") and x.endswith("}")) for x, y in zip(a, b))


def dialect_class(venue: str) -> type[Dialect]:
    """The dialect class of a venue (``services.simulator.dialects.<venue>.DIALECT``)."""
    import importlib

    return importlib.import_module(f"services.simulator.dialects.{venue}").DIALECT  # type: ignore[no-any-return]


__all__ = ["Dialect", "Limit", "Reply", "Req", "Route", "dialect_class"]
