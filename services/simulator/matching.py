"""Price-time matching of simulated orders, and the balances they move.

Venue-neutral: a venue module turns its request into an :class:`Order`, calls
:meth:`Exchange.place` / :meth:`Exchange.cancel`, and renders the result in its own JSON.

Liquidity comes from two places:
- the *recorded* book (anonymous levels from the venue's snapshot, moved by the replayed
  depth updates); at a price, recorded liquidity is ahead of simulated orders in the queue;
- *resting* simulated orders of every account, first come first served at a price.

Resting simulated orders also fill when the replayed market trades through them (a
recorded trade at or through their price, up to the trade's size) or when a recorded
depth update crosses them; they fill as makers, at their own price.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Callable, Iterable, Literal

from services.simulator.clock import Clock

ZERO = Decimal(0)
QUANTUM = Decimal("0.00000001")
"""Quantities and fees are kept to 8 decimals, as both venues report them."""

Side = Literal["buy", "sell"]
OrderStatus = Literal["new", "partially_filled", "filled", "canceled", "expired"]
UpdateKind = Literal["new", "trade", "canceled", "expired"]


class OrderRejected(Exception):
    """The order cannot be accepted; ``reason`` is one of the class constants."""

    INSUFFICIENT_BALANCE = "insufficient_balance"
    WOULD_TAKE = "would_take"
    """A post-only order would have matched on arrival."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str
    """The venue's own symbol (NKNUSDT, KRW-LAMB)."""
    base: str
    quote: str
    step: Decimal = QUANTUM
    """Quantity increment (what a market buy by funds rounds its quantity down to)."""


@dataclass(frozen=True, slots=True)
class FeeModel:
    """Trading fees of a venue.

    ``in_quote=False``: the fee is taken from the asset received (Binance commission).
    ``in_quote=True``: the fee is always in the quote asset and a buy reserves it up
    front (Upbit ``reserved_fee``).
    """

    maker: Callable[[Market], Decimal]
    taker: Callable[[Market], Decimal]
    in_quote: bool


@dataclass(slots=True)
class Fill:
    trade_id: int
    price: Decimal
    quantity: Decimal
    quote_quantity: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    ts: int
    """Nanoseconds."""


@dataclass(slots=True, eq=False)
class Order:
    """A simulated order. ``quantity`` is in base units; a market buy by funds sets
    ``quote_quantity`` instead."""

    order_id: int | str
    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: Literal["limit", "market"]
    time_in_force: Literal["gtc", "ioc", "fok"] = "gtc"
    post_only: bool = False
    price: Decimal | None = None
    quantity: Decimal | None = None
    quote_quantity: Decimal | None = None
    ts_created: int = 0
    ts_updated: int = 0
    status: OrderStatus = "new"
    filled: Decimal = ZERO
    filled_quote: Decimal = ZERO
    fees: Decimal = ZERO
    fills: list[Fill] = field(default_factory=list)
    lock_asset: str = ""
    locked: Decimal = ZERO
    """Funds still held for the unfilled part."""
    reserved_fee: Decimal = ZERO
    """Fee reserved at placement (FeeModel.in_quote buys)."""
    venue_fields: dict = field(default_factory=dict)
    """Anything the venue echoes back unchanged (response type, ord_type, identifier...)."""

    @property
    def remaining(self) -> Decimal:
        return (self.quantity - self.filled) if self.quantity is not None else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("new", "partially_filled")

    @property
    def average_price(self) -> Decimal:
        return (self.filled_quote / self.filled) if self.filled else ZERO


class Wallet:
    """Free and locked balances of one account."""

    def __init__(self, balances: dict[str, Decimal] | None = None) -> None:
        self.free: dict[str, Decimal] = {a: Decimal(v) for a, v in (balances or {}).items()}
        self.locked: dict[str, Decimal] = {}

    def available(self, asset: str) -> Decimal:
        return self.free.get(asset, ZERO)

    def lock(self, asset: str, amount: Decimal) -> None:
        if amount > self.available(asset):
            raise OrderRejected(OrderRejected.INSUFFICIENT_BALANCE)
        self.free[asset] = self.available(asset) - amount
        self.locked[asset] = self.locked.get(asset, ZERO) + amount

    def unlock(self, asset: str, amount: Decimal) -> None:
        if amount:
            self.locked[asset] = self.locked.get(asset, ZERO) - amount
            self.free[asset] = self.available(asset) + amount

    def spend_locked(self, asset: str, amount: Decimal) -> None:
        self.locked[asset] = self.locked.get(asset, ZERO) - amount

    def debit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.available(asset) - amount

    def credit(self, asset: str, amount: Decimal) -> None:
        self.free[asset] = self.available(asset) + amount

    def assets(self) -> list[str]:
        return sorted(set(self.free) | {a for a, v in self.locked.items() if v})


class Book:
    """One market's book: recorded levels plus resting simulated orders."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.resting_bids: dict[Decimal, list[Order]] = {}
        self.resting_asks: dict[Decimal, list[Order]] = {}
        self.update_id = 0
        """Last depth update id applied (Binance lastUpdateId; 0 where the venue has none)."""

    def set_levels(self, side: Side, levels: Iterable[tuple[Decimal, Decimal]]) -> None:
        """Apply absolute quantities per price (0 removes the level) to the recorded side."""
        book = self.bids if side == "buy" else self.asks
        for price, qty in levels:
            if qty:
                book[price] = qty
            else:
                book.pop(price, None)

    def replace(self, bids: Iterable[tuple[Decimal, Decimal]], asks: Iterable[tuple[Decimal, Decimal]]) -> None:
        self.bids.clear()
        self.asks.clear()
        self.set_levels("buy", bids)
        self.set_levels("sell", asks)

    def rest(self, order: Order) -> None:
        side = self.resting_bids if order.side == "buy" else self.resting_asks
        side.setdefault(order.price, []).append(order)

    def unrest(self, order: Order) -> None:
        side = self.resting_bids if order.side == "buy" else self.resting_asks
        queue = side.get(order.price, [])
        if order in queue:
            queue.remove(order)
            if not queue:
                del side[order.price]

    def levels(self, side: Side, limit: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """Aggregated (price, quantity) of one side, best first: recorded + resting."""
        book, resting = (self.bids, self.resting_bids) if side == "buy" else (self.asks, self.resting_asks)
        agg = dict(book)
        for price, queue in resting.items():
            agg[price] = agg.get(price, ZERO) + sum((o.remaining for o in queue), ZERO)
        prices = sorted(agg, reverse=(side == "buy"))
        return [(p, agg[p]) for p in prices[:limit] if agg[p] > 0]

    def best(self, side: Side) -> tuple[Decimal, Decimal] | None:
        top = self.levels(side, 1)
        return top[0] if top else None


@dataclass(slots=True)
class _Match:
    price: Decimal
    quantity: Decimal
    maker: Order | None
    """The resting simulated order matched, or None for recorded liquidity."""


Listener = Callable[[Order, Fill | None, UpdateKind], None]
BalanceListener = Callable[[str, list[str]], None]


class Exchange:
    """The matching engine and wallets of one venue."""

    def __init__(
        self,
        markets: dict[str, Market],
        wallets: dict[str, Wallet],
        fees: FeeModel,
        clock: Clock,
        on_update: Listener | None = None,
        on_balance: BalanceListener | None = None,
    ) -> None:
        self.markets = markets
        self.books: dict[str, Book] = {s: Book() for s in markets}
        self.wallets = wallets
        self.fees = fees
        self.clock = clock
        self.on_update = on_update or (lambda order, fill, kind: None)
        self.on_balance = on_balance or (lambda account, assets: None)
        self._trade_ids = itertools.count(1)

    # -- placing and canceling ------------------------------------------------------------

    def would_take(self, order: Order) -> bool:
        """Whether a limit order would match on arrival."""
        opposite = self.books[order.symbol].best("sell" if order.side == "buy" else "buy")
        if opposite is None or order.price is None:
            return False
        return order.price >= opposite[0] if order.side == "buy" else order.price <= opposite[0]

    def place(self, order: Order) -> Order:
        """Accept, match and (GTC limit) rest an order; raises OrderRejected (nothing changes then)."""
        market = self.markets[order.symbol]
        wallet = self.wallets[order.account]
        if order.post_only and self.would_take(order):
            raise OrderRejected(OrderRejected.WOULD_TAKE)
        matches = self._plan(order)
        lock_asset, lock = self._lock_needed(order, market, matches)
        wallet.lock(lock_asset, lock)  # raises when the balance is short
        order.lock_asset, order.locked = lock_asset, lock
        if order.side == "buy" and self.fees.in_quote:
            notional = (order.quote_quantity if order.quote_quantity is not None
                        else order.price * order.quantity if order.price is not None
                        else sum((m.price * m.quantity for m in matches), ZERO))
            order.reserved_fee = (notional * self.fees.taker(market)).quantize(QUANTUM, ROUND_DOWN)
        order.ts_created = order.ts_updated = self.clock()
        self.on_update(order, None, "new")
        if order.time_in_force == "fok" and not self._fills_completely(order, matches):
            matches = []
        for m in matches:
            self._execute(order, m, market)
        self._finish_arrival(order)
        touched = {market.base, market.quote}
        self.on_balance(order.account, sorted(touched))
        for maker in {m.maker.account for m in matches if m.maker is not None}:
            self.on_balance(maker, sorted(touched))
        return order

    def cancel(self, order: Order) -> Order:
        """Cancel an open order and release what it holds."""
        if not order.is_open:
            return order
        self.books[order.symbol].unrest(order)
        self._close(order, "canceled")
        market = self.markets[order.symbol]
        self.on_balance(order.account, sorted({market.base, market.quote}))
        return order

    # -- the replayed market ------------------------------------------------------------

    def apply_depth(self, symbol: str, bids: Iterable[tuple[Decimal, Decimal]],
                    asks: Iterable[tuple[Decimal, Decimal]], *, snapshot: bool = False,
                    update_id: int = 0) -> None:
        """Move the recorded book; resting simulated orders it crosses fill as makers."""
        book = self.books[symbol]
        if snapshot:
            book.replace(bids, asks)
        else:
            book.set_levels("buy", bids)
            book.set_levels("sell", asks)
        if update_id:
            book.update_id = update_id
        self._sweep(symbol)

    def apply_trade(self, symbol: str, price: Decimal, quantity: Decimal, aggressor: Side | None) -> None:
        """A recorded trade: resting orders at or through its price fill, up to its size."""
        book = self.books[symbol]
        sides = {"buy": ["sell"], "sell": ["buy"], None: ["sell", "buy"]}[aggressor]
        for side in sides:  # the side whose resting orders the aggressor hits
            resting = book.resting_asks if side == "sell" else book.resting_bids
            prices = sorted((p for p in resting if (p <= price if side == "sell" else p >= price)),
                            reverse=(side == "buy"))
            left = quantity
            for maker in [o for p in prices for o in resting.get(p, [])]:
                if left <= 0:
                    break
                qty = min(left, maker.remaining)
                self._fill_resting(maker, maker.price, qty)
                left -= qty

    # -- internals ---------------------------------------------------------------------------

    def _opposite(self, order: Order) -> list[_Match]:
        """Liquidity the order may take, in priority order (best price, recorded first, FIFO)."""
        book = self.books[order.symbol]
        if order.side == "buy":
            recorded, resting = book.asks, book.resting_asks
            ok = (lambda p: True) if order.price is None else (lambda p: p <= order.price)
        else:
            recorded, resting = book.bids, book.resting_bids
            ok = (lambda p: True) if order.price is None else (lambda p: p >= order.price)
        prices = sorted({p for p in recorded if ok(p)} | {p for p in resting if ok(p)},
                        reverse=(order.side == "sell"))
        out = []
        for p in prices:
            if recorded.get(p):
                out.append(_Match(p, recorded[p], None))
            out.extend(_Match(p, o.remaining, o) for o in resting.get(p, []))
        return out

    def _plan(self, order: Order) -> list[_Match]:
        """The matches the order would make now, without changing anything."""
        plan = []
        market = self.markets[order.symbol]
        if order.quote_quantity is not None:  # market buy by funds (fees, if any, on top)
            funds = order.quote_quantity
            for m in self._opposite(order):
                qty = min(m.quantity, (funds / m.price) // market.step * market.step)
                if qty <= 0:
                    break
                plan.append(_Match(m.price, qty, m.maker))
                funds -= m.price * qty
            return plan
        left = order.quantity
        for m in self._opposite(order):
            if left <= 0:
                break
            qty = min(left, m.quantity)
            plan.append(_Match(m.price, qty, m.maker))
            left -= qty
        return plan

    @staticmethod
    def _fills_completely(order: Order, plan: list[_Match]) -> bool:
        return sum((m.quantity for m in plan), ZERO) >= (order.quantity or ZERO)

    def _lock_needed(self, order: Order, market: Market, plan: list[_Match]) -> tuple[str, Decimal]:
        if order.side == "sell":
            return market.base, order.quantity
        fee = (1 + self.fees.taker(market)) if self.fees.in_quote else Decimal(1)
        if order.quote_quantity is not None:
            return market.quote, order.quote_quantity * fee
        if order.order_type == "limit":
            return market.quote, order.price * order.quantity * fee
        # market buy by quantity: what walking the book costs now
        return market.quote, sum((m.price * m.quantity for m in plan), ZERO) * fee

    def _execute(self, taker: Order, m: _Match, market: Market) -> None:
        """Trade ``m.quantity`` at ``m.price`` between the taker and the maker (or the recorded book)."""
        book = self.books[taker.symbol]
        if m.maker is None:
            levels = book.asks if taker.side == "buy" else book.bids
            levels[m.price] -= m.quantity
            if levels[m.price] <= 0:
                del levels[m.price]
        else:
            self._trade(m.maker, m.price, m.quantity, market, is_maker=True)
            if not m.maker.is_open:
                book.unrest(m.maker)
        self._trade(taker, m.price, m.quantity, market, is_maker=False)

    def _fill_resting(self, maker: Order, price: Decimal, qty: Decimal) -> None:
        market = self.markets[maker.symbol]
        self._trade(maker, price, qty, market, is_maker=True)
        if not maker.is_open:
            self.books[maker.symbol].unrest(maker)
        self.on_balance(maker.account, sorted({market.base, market.quote}))

    def _trade(self, order: Order, price: Decimal, qty: Decimal, market: Market, *, is_maker: bool) -> None:
        """One fill of one order: balances move, the order's totals and status advance."""
        wallet = self.wallets[order.account]
        rate = self.fees.maker(market) if is_maker else self.fees.taker(market)
        quote_qty = price * qty
        if order.side == "buy":
            fee_asset = market.quote if self.fees.in_quote else market.base
            fee = ((quote_qty if self.fees.in_quote else qty) * rate).quantize(QUANTUM, ROUND_DOWN)
            cost = quote_qty + (fee if self.fees.in_quote else ZERO)
            self._spend(order, wallet, cost)
            if order.order_type == "limit" and order.price is not None and price < order.price:
                # price improvement: the part of the lock reserved at the limit price is freed
                factor = (1 + self.fees.taker(market)) if self.fees.in_quote else Decimal(1)
                self._release(order, wallet, (order.price - price) * qty * factor)
            wallet.credit(market.base, qty - (ZERO if self.fees.in_quote else fee))
        else:
            fee_asset = market.quote
            fee = (quote_qty * rate).quantize(QUANTUM, ROUND_DOWN)
            self._spend(order, wallet, qty)
            wallet.credit(market.quote, quote_qty - fee)
        fill = Fill(next(self._trade_ids), price, qty, quote_qty, fee, fee_asset, is_maker, self.clock())
        order.fills.append(fill)
        order.filled += qty
        order.filled_quote += quote_qty
        order.fees += fee
        order.ts_updated = fill.ts
        if self._done(order, price, market):
            order.status = "filled"
            self._release(order, wallet, order.locked)
        else:
            order.status = "partially_filled"
        self.on_update(order, fill, "trade")

    def _done(self, order: Order, price: Decimal, market: Market) -> bool:
        if order.quantity is not None:
            return order.filled >= order.quantity
        # by funds: done when what is left cannot buy one more step at this price
        factor = (1 + self.fees.taker(market)) if self.fees.in_quote else Decimal(1)
        return order.locked < price * market.step * factor

    @staticmethod
    def _spend(order: Order, wallet: Wallet, amount: Decimal) -> None:
        from_lock = min(amount, order.locked)
        wallet.spend_locked(order.lock_asset, from_lock)
        order.locked -= from_lock
        if amount > from_lock:  # rounding dust beyond the lock comes from free balance
            wallet.debit(order.lock_asset, amount - from_lock)

    @staticmethod
    def _release(order: Order, wallet: Wallet, amount: Decimal) -> None:
        amount = min(amount, order.locked)
        if amount > 0:
            wallet.unlock(order.lock_asset, amount)
            order.locked -= amount

    def _finish_arrival(self, order: Order) -> None:
        """After matching on arrival: rest a GTC limit remainder, expire any other."""
        if order.status == "filled":
            return
        if order.order_type == "limit" and order.time_in_force == "gtc":
            self.books[order.symbol].rest(order)
            return
        self._close(order, "expired")

    def _close(self, order: Order, status: Literal["canceled", "expired"]) -> None:
        wallet = self.wallets[order.account]
        self._release(order, wallet, order.locked)
        order.status = status
        order.ts_updated = self.clock()
        self.on_update(order, None, status)

    def _sweep(self, symbol: str) -> None:
        """Resting orders crossed by the recorded book fill against it at their own price."""
        book = self.books[symbol]
        for side in ("buy", "sell"):
            resting = book.resting_bids if side == "buy" else book.resting_asks
            recorded = book.asks if side == "buy" else book.bids
            for price in sorted(resting, reverse=(side == "buy")):
                crossing = sorted((p for p in recorded if (p <= price if side == "buy" else p >= price)),
                                  reverse=(side == "sell"))
                for maker in list(resting.get(price, [])):
                    while crossing and maker.is_open:
                        level = crossing[0]
                        qty = min(maker.remaining, recorded[level])
                        recorded[level] -= qty
                        if recorded[level] <= 0:
                            del recorded[level]
                            crossing.pop(0)
                        self._fill_resting(maker, price, qty)
