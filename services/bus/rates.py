"""A live console view of message rates per subject, as the demo shows them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any, Callable, TextIO


def subject_group(subject: str) -> str:
    """Collapse a subject for display: market data per venue and channel, order events per
    account, inbox and JetStream API traffic by prefix; the rest as is."""
    if subject.startswith("_INBOX."):
        return "_INBOX.*"
    if subject.startswith("$JS.API."):
        return "$JS.API." + subject.split(".")[2] + ".*"
    if subject.startswith("$JS.ACK."):
        return "$JS.ACK.*"
    if subject.startswith("$JS.EVENT."):
        return "$JS.EVENT.*"
    parts = subject.split(".")
    if parts[0] == "md" and len(parts) == 4:
        return f"md.{parts[1]}.{parts[2]}.*"
    if parts[:2] == ["orders", "events"] and len(parts) == 5:
        return f"orders.events.{parts[2]}.{parts[3]}.*"
    if subject.startswith("$KV."):
        parts = subject.split(".")
        return f"$KV.{parts[1]}.*"
    return subject


class SubjectRates:
    """Counts messages per subject group on a wildcard subscription and renders a table."""

    def __init__(self, pattern: str = ">") -> None:
        self.pattern = pattern
        self.total: Counter[str] = Counter()
        self._window: Counter[str] = Counter()
        self._window_start = time.monotonic()
        self._sub: Any = None

    async def start(self, nc: Any) -> None:
        async def on_msg(msg: Any) -> None:
            group = subject_group(msg.subject)
            self.total[group] += 1
            self._window[group] += 1

        self._sub = await nc.subscribe(self.pattern, cb=on_msg)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None

    def snapshot(self) -> list[tuple[str, float, int]]:
        """(subject group, msgs/s since the last snapshot, total) rows, busiest first."""
        now = time.monotonic()
        elapsed = max(now - self._window_start, 1e-9)
        rows = [(g, self._window[g] / elapsed, n) for g, n in self.total.items()]
        self._window.clear()
        self._window_start = now
        rows.sort(key=lambda r: (-r[1], -r[2], r[0]))
        return rows

    def render(self, limit: int = 40) -> str:
        rows = self.snapshot()
        width = max([len(r[0]) for r in rows[:limit]] + [len("subject")])
        lines = [f"{'subject':<{width}}  {'msg/s':>9}  {'total':>9}"]
        lines += [f"{g:<{width}}  {rate:>9.1f}  {n:>9}" for g, rate, n in rows[:limit]]
        if len(rows) > limit:
            lines.append(f"... {len(rows) - limit} more subjects")
        return "\n".join(lines)

    async def show(self, out: TextIO, stop: asyncio.Event, interval_s: float = 2.0,
                   extra: Callable[[], str] | None = None) -> None:
        """Print the table every ``interval_s`` until ``stop``; redraw in place on a TTY.
        ``extra`` renders more text shown under the table (the demo's orders per venue)."""
        tty = hasattr(out, "isatty") and out.isatty()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except asyncio.TimeoutError:
                pass
            table = self.render() + ("\n" + extra() if extra else "")
            if tty:
                out.write("\x1b[2J\x1b[H" + time.strftime("%H:%M:%S") + "  subject rates (Ctrl-C to stop)\n" + table + "\n")
            else:
                out.write(f"--- subject rates at {time.strftime('%H:%M:%S')}\n{table}\n")
            out.flush()
