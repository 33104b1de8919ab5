"""Order state in KV bucket ``orders``: the client order id is claimed before anything
is sent, marked ``sent`` before the request leaves, and ``done`` once the command's
outcome event is published. A redelivered command reads this state instead of guessing.

Also the shared nonce sequences for venues that need a strictly increasing nonce per
API key (Kraken, Bitfinex): one KV counter per key, advanced by compare-and-swap.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Literal

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

Phase = Literal["claimed", "sent", "done"]


class OrderRecord(msgspec.Struct, kw_only=True):
    """What exbus knows of one client order id."""

    command_id: str
    phase: Phase
    symbol: str
    venue_order_id: str | None = None
    status: str | None = None
    """Last order status published (accepted, partially_filled, filled, ...)."""
    filled_quantity: Decimal = Decimal(0)
    tracking: bool = False
    """True while the order is open at the venue and the tracker polls it."""
    ts: int = 0
    fill_ids: list[str] = []
    """Venue trade ids of the fills published or absorbed (services.executor.fills)."""
    filled_quote: Decimal = Decimal(0)
    """Sum of price x quantity over the fills published (for the average price)."""
    fees: Decimal = Decimal(0)
    """Sum of the fees published."""
    unattributed: Decimal = Decimal(0)
    """Filled quantity published without a trade id (a poll's, a totals-only update's)."""


def order_key(venue: str, account: str, client_order_id: str) -> str:
    return f"{venue}.{account}.{client_order_id}"


def _conflict(e: Exception) -> bool:
    return isinstance(e, KeyWrongLastSequenceError) or "wrong last sequence" in str(e).lower()


class OrderStates:
    """Compare-and-swap access to KV ``orders``."""

    REMEMBERED = 4096
    """Own writes kept for ``latest`` (the commands in flight need only a few)."""

    def __init__(self, kv) -> None:
        self.kv = kv
        self._written: dict[str, tuple[bytes, int]] = {}

    def _remember(self, key: str, data: bytes, revision: int) -> None:
        self._written.pop(key, None)
        self._written[key] = (data, revision)
        if len(self._written) > self.REMEMBERED:
            del self._written[next(iter(self._written))]

    async def latest(self, key: str) -> tuple[OrderRecord | None, int | None]:
        """The record as this replica last wrote it, without a round trip when it did (read
        once: the entry is forgotten), else ``get``. Another writer since makes the caller's
        compare-and-swap fail, never lets it overwrite."""
        written = self._written.pop(key, None)
        if written is None:
            return await self.get(key)
        return msgspec.json.decode(written[0], type=OrderRecord), written[1]

    async def get(self, key: str) -> tuple[OrderRecord | None, int | None]:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None, None
        if not entry.value:
            return None, entry.revision
        return msgspec.json.decode(entry.value, type=OrderRecord), entry.revision

    async def claim(self, key: str, record: OrderRecord) -> tuple[OrderRecord, int, bool]:
        """Create the record unless it exists. Returns (record, revision, created)."""
        record.ts = time.time_ns()
        data = msgspec.json.encode(record)
        try:
            rev = await self.kv.create(key, data)
            self._remember(key, data, rev)
            return record, rev, True
        except Exception as e:
            if not _conflict(e):
                raise
        existing, rev = await self.get(key)
        assert existing is not None and rev is not None
        return existing, rev, False

    async def update(self, key: str, record: OrderRecord, revision: int) -> int | None:
        """Write ``record`` if nobody wrote since ``revision``; new revision, or None on conflict."""
        record.ts = time.time_ns()
        data = msgspec.json.encode(record)
        try:
            rev = await self.kv.update(key, data, last=revision)
        except Exception as e:
            if _conflict(e):
                return None
            raise
        self._remember(key, data, rev)
        return rev

    async def tracked(self) -> list[tuple[str, OrderRecord, int]]:
        """Every record whose order is still open at the venue.

        One pass of a watcher over the bucket's latest values: a request per key (keys(),
        then get) took over a second per pass with a few thousand orders in the bucket."""
        out = []
        watcher = await self.kv.watchall(ignore_deletes=True)
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are all delivered
                    break
                if entry.value:
                    record = msgspec.json.decode(entry.value, type=OrderRecord)
                    if record.tracking:
                        out.append((entry.key, record, entry.revision))
        finally:
            await watcher.stop()
        return out


class NonceSequences:
    """Strictly increasing nonces per API key, shared by every replica (KV counter)."""

    def __init__(self, kv) -> None:
        self.kv = kv

    async def next(self, venue: str, api_key_id: str) -> int:
        """A nonce greater than any handed out before for this key: max(last + 1, now in µs)."""
        key = f"nonce.{venue}.{api_key_id}"
        while True:
            now = time.time_ns() // 1000
            try:
                entry = await self.kv.get(key)
                last, rev = int(entry.value or b"0"), entry.revision
            except KeyNotFoundError:
                last, rev = 0, None
            nonce = max(last + 1, now)
            try:
                if rev is None:
                    await self.kv.create(key, str(nonce).encode())
                else:
                    await self.kv.update(key, str(nonce).encode(), last=rev)
                return nonce
            except Exception as e:
                if not _conflict(e):
                    raise
