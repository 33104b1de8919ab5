"""The venue-neutral simulator core: one venue's accounts, markets and their rules, the
order registry and its client-order-id policy, trade history, nonces, and books seeded
from replayed market data.

A dialect (``services/simulator/dialects/<venue>.py``) parses the venue's request into
an :class:`~services.simulator.matching.Order`, calls :meth:`VenueCore.place` and friends,
and renders what comes back, or the :class:`Refusal` raised, in the venue's own format.
Nothing here knows a venue's wire format.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Callable, Iterable, Literal

from services.simulator.clock import Clock
from services.simulator.config import Account
from services.simulator.faults import note_order
from services.simulator.ledger import Ledger
from services.simulator.matching import ZERO, Exchange, FeeModel, Fill, Market, Order, OrderRejected, Wallet

RefusalKind = Literal[
    "bad_request",            # a parameter missing or malformed
    "unknown_symbol",
    "bad_key",                # no such API key
    "bad_signature",
    "expired",                # timestamp outside the venue's window, expired token
    "nonce",                  # nonce reused or not increasing
    "insufficient_balance",
    "unknown_order",
    "duplicate_order",        # client order id in use
    "tick_size",
    "lot_size",
    "min_quantity",
    "min_notional",
    "would_take",             # post-only order that would match
    "order_closed",           # cancel of an order that is no longer open
    "rate_limited",
    "banned",
    "maintenance",
]


class Refusal(Exception):
    """A request the venue refuses, in venue-neutral terms; the dialect renders it as the
    venue does (status, body, headers). ``retry_after`` is in seconds."""

    def __init__(self, kind: RefusalKind, detail: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind: RefusalKind = kind
        self.detail = detail
        self.retry_after = retry_after

    limit: str | None = None
    """For ``rate_limited``: the name of the limit (the dialect's ``LIMITS`` key) that was hit."""
    order: "Order | None" = None
    """For refusals of :meth:`VenueCore.place`: the order refused (its side, market)."""


ClientIdPolicy = Literal["open", "forever", "return_original", "none"]
"""How a venue treats a client order id it has seen:

- ``open``: refused only while an order with it is open (Binance, Kraken, OKX);
- ``forever``: used up for good, even by a refused order (Upbit, Bithumb, Korbit, Coinone);
- ``return_original``: the create is answered with the first order (Coinbase);
- ``none``: not checked at all (Bitfinex ``cid``).
"""


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market of a venue and its order rules. Assets carry exbus names (BTC, USD);
    a dialect renders the venue's own (Kraken XXBT) where they differ."""

    symbol: str
    """exbus ``BASE-QUOTE``."""
    venue_symbol: str
    tick: Decimal
    lot: Decimal
    min_quantity: Decimal = ZERO
    min_notional: Decimal = ZERO
    base_asset: str = ""
    """The base asset where ``symbol`` is not ``BASE-QUOTE`` ("" = read from ``symbol``)."""
    quote_asset: str = ""
    tick_table: tuple[tuple[Decimal, Decimal], ...] = ()
    """Price-dependent ticks, (lowest price, tick) rows from the highest price down (the
    KRW venues' 호가 단위 tables); when set, the row for the order's price replaces ``tick``."""

    def tick_at(self, price: Decimal) -> Decimal:
        """The tick a price must be a multiple of."""
        for lowest, tick in self.tick_table:
            if price >= lowest:
                return tick
        return self.tick_table[-1][1] if self.tick_table else self.tick

    @property
    def base(self) -> str:
        return self.base_asset or self.symbol.split("-", 1)[0]

    @property
    def quote(self) -> str:
        return self.quote_asset or self.symbol.split("-", 1)[1]


def check_rules(spec: MarketSpec, order: Order, reference_price: Decimal | None) -> None:
    """Tick, lot, minimum quantity and minimum notional; raises the Refusal a venue gives.
    ``reference_price`` prices a market order's notional (the best opposite price)."""
    tick = spec.tick_at(order.price) if order.price is not None else spec.tick
    if order.price is not None and tick and order.price % tick:
        raise Refusal("tick_size", f"price {order.price} is not a multiple of the tick size {tick}")
    if order.quantity is not None:
        if spec.lot and order.quantity % spec.lot:
            raise Refusal("lot_size", f"quantity {order.quantity} is not a multiple of the lot size {spec.lot}")
        if order.quantity < spec.min_quantity:
            raise Refusal("min_quantity", f"quantity {order.quantity} is below the minimum {spec.min_quantity}")
    price = order.price if order.price is not None else reference_price
    notional = order.quote_quantity if order.quote_quantity is not None else (
        price * order.quantity if price is not None and order.quantity is not None else None)
    if notional is not None and notional < spec.min_notional:
        raise Refusal("min_notional", f"order value {notional} is below the minimum {spec.min_notional}")


Listener = Callable[[Order, Fill | None, str], None]
BalanceListener = Callable[[str, list[str]], None]
Rules = Callable[[MarketSpec, Order, "Decimal | None"], None]


@dataclass
class VenueCore:
    """The state of one simulated venue, whatever protocol it speaks."""

    name: str
    markets: dict[str, MarketSpec]
    """exbus symbol -> spec."""
    accounts: list[Account]
    fees: FeeModel
    clock: Clock
    ledger: Ledger
    client_ids: ClientIdPolicy = "open"
    exchange: Exchange = field(init=False)
    orders: dict[str, Order] = field(default_factory=dict)
    """Venue order id (as text) -> order."""
    trades: dict[str, list[tuple[Order, Fill]]] = field(default_factory=dict)
    """Account name -> its fills, oldest first."""
    listeners: list[Listener] = field(default_factory=list)
    """Called on every order update (new, trade, canceled, expired): private streams."""
    balance_listeners: list[BalanceListener] = field(default_factory=list)
    """Called with (account name, assets) when balances change: private balance streams."""
    rules: Rules = check_rules
    """The order rules :meth:`place` applies (a dialect that checks its venue's own filters
    while parsing the request sets a no-op)."""
    order_gate: Callable[[Order], None] | None = None
    """Called by :meth:`place` after the client-order-id and rule checks, before matching;
    raises Refusal to refuse (order-count limits). ``order_refund`` undoes it when matching
    then refuses the order."""
    order_refund: Callable[[Order], None] | None = None
    post_only_taking: Literal["refuse", "cancel"] = "refuse"
    """A post-only order that would match: refused (``would_take``), or accepted and
    canceled at once with nothing executed (Upbit)."""
    describe: Callable[[Refusal], tuple[str, str]] | None = None
    """The (error, message) the ledger records for a refusal (None: kind and text); a
    dialect sets it to its venue's error code and message."""
    _by_client_id: dict[tuple[str, str], list[Order]] = field(default_factory=dict)
    _used_client_ids: dict[str, set[str]] = field(default_factory=dict)
    _nonces: dict[str, int] = field(default_factory=dict)
    _single_use: dict[str, set[str]] = field(default_factory=dict)
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))
    _claimed: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_key = {a.api_key: a for a in self.accounts}
        self.by_name = {a.name: a for a in self.accounts}
        wallets = {a.name: Wallet(a.balances) for a in self.accounts}
        engine_markets = {s: Market(s, m.base, m.quote, m.lot or Decimal("0.00000001")) for s, m in self.markets.items()}
        self.exchange = Exchange(engine_markets, wallets, self.fees, self.clock, self._on_update, self._on_balance)
        self.trades = {a.name: [] for a in self.accounts}

    # -- accounts and authentication helpers ---------------------------------------------

    def account(self, api_key: str) -> Account:
        """The account of an API key; Refusal ``bad_key`` for an unknown one."""
        account = self.by_key.get(api_key)
        if account is None:
            raise Refusal("bad_key", "unknown API key")
        return account

    def increasing_nonce(self, account: Account, nonce: int) -> None:
        """Kraken, Bitfinex: every nonce of a key must exceed the last one accepted."""
        if nonce <= self._nonces.get(account.name, 0):
            raise Refusal("nonce", f"nonce {nonce} is not greater than the last one ({self._nonces[account.name]})")
        self._nonces[account.name] = nonce

    def single_use_nonce(self, account: Account, nonce: str) -> None:
        """Upbit, Bithumb, Coinone: a nonce (a UUID) may be used once per key."""
        seen = self._single_use.setdefault(account.name, set())
        if not nonce or nonce in seen:
            raise Refusal("nonce", "nonce already used" if nonce else "nonce missing")
        seen.add(nonce)

    def within(self, ts_ms: int, window_ms: int, ahead_ms: int = 1000) -> None:
        """A request time must be at most ``ahead_ms`` ahead of the venue's clock and at
        most ``window_ms`` behind it."""
        now_ms = self.now_ms()
        if ts_ms >= now_ms + ahead_ms or now_ms - ts_ms > window_ms:
            raise Refusal("expired", f"request time {ts_ms} is outside the venue's window (server time {now_ms})")

    def now_ms(self) -> int:
        return self.clock() // 1_000_000

    # -- market data ------------------------------------------------------------------------

    def spec(self, venue_symbol: str) -> MarketSpec:
        """The market of a venue symbol; Refusal ``unknown_symbol`` otherwise."""
        for spec in self.markets.values():
            if spec.venue_symbol == venue_symbol:
                return spec
        raise Refusal("unknown_symbol", f"unknown market {venue_symbol}")

    def levels(self, symbol: str, side: Literal["buy", "sell"], depth: int | None = None) -> list[tuple[Decimal, Decimal]]:
        return self.exchange.books[symbol].levels(side, depth)

    def best(self, symbol: str, side: Literal["buy", "sell"]) -> tuple[Decimal, Decimal] | None:
        return self.exchange.books[symbol].best(side)

    def seed_books(self, books: dict[str, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]],
                   min_levels: int = 20) -> None:
        """Set each market's recorded book (bids, asks); a thin book is extended to
        ``min_levels`` per side with levels one tick apart, so market orders find liquidity."""
        for symbol, (bids, asks) in books.items():
            spec = self.markets.get(symbol)
            if spec is None:
                continue
            bids, asks = _deepen(bids, "buy", spec, min_levels), _deepen(asks, "sell", spec, min_levels)
            self.exchange.apply_depth(symbol, bids, asks, snapshot=True)

    # -- orders -----------------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)  # type: ignore[call-overload]

    def claim_client_id(self, account: Account, client_order_id: str) -> None:
        """``forever`` venues: use up a client order id before the request is parsed, so a
        request refused for any reason still spends it (Upbit); Refusal ``duplicate_order``
        for one used before. The next :meth:`place` with it then passes."""
        used = self._used_client_ids.setdefault(account.name, set())
        if client_order_id in used:
            raise Refusal("duplicate_order", f"client order id {client_order_id} was used before")
        used.add(client_order_id)
        self._claimed.add((account.name, client_order_id))

    def record_refusal(self, account: str, client_order_id: str, refusal: Refusal) -> None:
        """Put a refused order in the ledger (what :meth:`place` does for its own refusals;
        for refusals a dialect raises while parsing an order)."""
        self._claimed.discard((account, client_order_id))  # a claimed id stays used up
        error, message = self.describe(refusal) if self.describe else (refusal.kind, str(refusal))
        self.ledger.rejected(self.name, account, client_order_id, error, message, self.clock())

    def place(self, order: Order) -> Order:
        """Check an order (market, client order id, rules, balance), then match and rest it.

        The order should carry its venue id; one without (0 or "") gets :meth:`next_id` once
        it passed every check. Raises Refusal (recorded in the ledger) when the
        venue would refuse it; for ``return_original`` venues a repeated client order id
        returns the first order instead."""
        spec = self.markets.get(order.symbol)
        account = order.account
        try:
            if spec is None:
                raise Refusal("unknown_symbol", f"unknown market {order.symbol}")
            if order.client_order_id:
                earlier = self._by_client_id.get((account, order.client_order_id), [])
                if self.client_ids == "return_original" and earlier:
                    return earlier[0]
                if self.client_ids == "open" and any(o.is_open for o in earlier):
                    raise Refusal("duplicate_order", f"client order id {order.client_order_id} is in use")
                if self.client_ids == "forever" and (account, order.client_order_id) in self._claimed:
                    self._claimed.discard((account, order.client_order_id))
                elif self.client_ids == "forever":
                    used = self._used_client_ids.setdefault(account, set())
                    if order.client_order_id in used:
                        raise Refusal("duplicate_order", f"client order id {order.client_order_id} was used before")
                    used.add(order.client_order_id)
            opposite = self.best(order.symbol, "sell" if order.side == "buy" else "buy")
            self.rules(spec, order, opposite[0] if opposite else None)
            if self.order_gate is not None:
                self.order_gate(order)
            if order.order_id in (0, ""):
                order.order_id = self.next_id()
            if order.post_only and self.post_only_taking == "cancel" and self.exchange.would_take(order):
                order.status = "canceled"  # accepted and canceled at once: nothing executes
                order.ts_created = order.ts_updated = self.clock()
            else:
                try:
                    self.exchange.place(order)
                except OrderRejected as e:
                    if self.order_refund is not None:
                        self.order_refund(order)
                    if e.reason == OrderRejected.WOULD_TAKE:
                        raise Refusal("would_take", "a post-only order would match") from None
                    raise Refusal("insufficient_balance", "insufficient balance for the order") from None
        except Refusal as r:
            r.order = r.order or order
            self.record_refusal(account, order.client_order_id, r)
            raise
        self.orders[str(order.order_id)] = order
        if order.client_order_id:
            self._by_client_id.setdefault((account, order.client_order_id), []).append(order)
        self.ledger.accepted(self.name, order)
        note_order(order)
        return order

    def find(self, account: Account, *, order_id: str | int | None = None, client_order_id: str | None = None,
             open_only: bool = False) -> Order:
        """An order of ``account`` by venue id or client order id (the newest with that id);
        Refusal ``unknown_order`` otherwise."""
        order: Order | None = None
        if order_id is not None and str(order_id) != "":
            order = self.orders.get(str(order_id))
            if order is not None and client_order_id and order.client_order_id != client_order_id:
                order = None
        elif client_order_id:
            matches = self._by_client_id.get((account.name, client_order_id), [])
            live = [o for o in matches if o.is_open]
            order = (live or matches or [None])[-1]
        if order is None or order.account != account.name or (open_only and not order.is_open):
            raise Refusal("unknown_order", f"no such order ({order_id or client_order_id})")
        return order

    def cancel(self, order: Order) -> Order:
        """Cancel an open order; Refusal ``order_closed`` for one that is not open."""
        if not order.is_open:
            raise Refusal("order_closed", f"order {order.order_id} is {order.status}")
        note_order(order)
        return self.exchange.cancel(order)

    def open_orders(self, account: Account, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values()
                if o.account == account.name and o.is_open and (symbol is None or o.symbol == symbol)]

    def account_orders(self, account: Account, symbol: str | None = None) -> list[Order]:
        return [o for o in self.orders.values() if o.account == account.name and (symbol is None or o.symbol == symbol)]

    def fills(self, account: Account, symbol: str | None = None, since_ns: int = 0) -> list[tuple[Order, Fill]]:
        """The account's fills, oldest first."""
        return [(o, f) for o, f in self.trades.get(account.name, [])
                if (symbol is None or o.symbol == symbol) and f.ts >= since_ns]

    def wallet(self, account: Account) -> Wallet:
        return self.exchange.wallets[account.name]

    def _on_balance(self, account: str, assets: list[str]) -> None:
        for listener in self.balance_listeners:
            listener(account, assets)

    def _on_update(self, order: Order, fill: Fill | None, kind: str) -> None:
        if fill is not None:
            self.trades.setdefault(order.account, []).append((order, fill))
        for listener in self.listeners:
            listener(order, fill, kind)


def _deepen(levels: list[tuple[Decimal, Decimal]], side: str, spec: MarketSpec, n: int) -> list[tuple[Decimal, Decimal]]:
    levels = sorted(((p, q) for p, q in levels if q > 0), key=lambda lv: lv[0], reverse=(side == "buy"))
    if not levels or len(levels) >= n:
        return levels
    size = max(q for _, q in levels)
    step = spec.tick * max(1, int((levels[0][0] * Decimal("0.0005")) // spec.tick))  # ~5 bp apart
    price = levels[-1][0]
    while len(levels) < n:
        price = price - step if side == "buy" else price + step
        if price <= 0:
            break
        levels.append((price, size))
    return levels


def replayed_books(venue: str) -> dict[str, tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]]:
    """Each symbol's book at the end of the venue's replayed market data (the recordings
    ``exbus up --sim`` replays to the ingestor), read with exbus's own frame parser."""
    from services.ingestor.replay import load_recording
    from services.simulator.replayed import REPLAYED
    from services.venues.wsbase import BookUpdate, ws_adapter

    files, symbols = REPLAYED[venue]
    recording = load_recording(files, venue=venue)
    adapter = ws_adapter(venue)()
    subscribed = adapter.recorded_subscriptions(recording.url, recording.sent)
    adapter.remember(sorted({s.symbol for s in subscribed}) or symbols or [])
    books: dict[str, tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]] = {}
    for ts, data in recording.frames:
        try:
            events = adapter.parse_frame(data, ts)
        except Exception:  # noqa: BLE001 - a frame the parser refuses moves no book
            continue
        for ev in events:
            if not isinstance(ev, BookUpdate):
                continue
            bids, asks = books.setdefault(ev.symbol, ({}, {}))
            if ev.snapshot:
                bids.clear()
                asks.clear()
            for side, levels in ((bids, ev.bids), (asks, ev.asks)):
                for level in levels:
                    price, size = (level.price, level.size) if hasattr(level, "price") else level
                    if size:
                        side[price] = size
                    else:
                        side.pop(price, None)
    return {s: (list(b.items()), list(a.items())) for s, (b, a) in books.items()}


__all__ = ["ClientIdPolicy", "MarketSpec", "Refusal", "RefusalKind", "VenueCore", "check_rules", "replayed_books"]
