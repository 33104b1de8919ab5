"""Rate-limit bookkeeping as the venues do it: fixed, clock-aligned windows per scope
(an IP or an account), and the 429 -> 418 escalation for clients that do not back off.

Binance: "at most 100 new orders between 12:34:00 and 12:34:10" (faqs/order_count_decrement.md);
weights per IP per minute. Upbit: requests per second per group, per IP or per account.
Every window remembers its peak, so the ledger can prove a fleet stayed under the limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.simulator.config import BanPolicy

NS = 1_000_000_000


@dataclass(slots=True)
class Window:
    """Usage of one limit in fixed windows aligned on multiples of the interval."""

    name: str
    limit: int
    interval_s: int
    enforced: bool = True
    start: int = -1
    used: int = 0
    max_used: int = 0
    exceeded: int = 0
    """Requests refused (or, if not enforced, sent) over the limit."""

    def roll(self, now: int) -> None:
        start = now - now % (self.interval_s * NS)
        if start != self.start:
            self.start, self.used = start, 0

    def fits(self, now: int, amount: int) -> bool:
        self.roll(now)
        return self.used + amount <= self.limit

    def add(self, now: int, amount: int) -> int:
        self.roll(now)
        self.used += amount
        self.max_used = max(self.max_used, self.used)
        return self.used

    def sub(self, now: int, amount: int) -> int:
        self.roll(now)
        self.used = max(0, self.used - amount)
        return self.used

    def current(self, now: int) -> int:
        self.roll(now)
        return self.used

    def seconds_to_reset(self, now: int) -> int:
        """Whole seconds until this window ends (at least 1)."""
        self.roll(now)
        left = self.start + self.interval_s * NS - now
        return max(1, -(-left // NS))

    def snapshot(self, now: int) -> dict:
        return {"limit": self.limit, "interval_s": self.interval_s, "used": self.current(now),
                "max_used": self.max_used, "exceeded": self.exceeded, "enforced": self.enforced}


@dataclass(slots=True)
class Scope:
    """One rate-limited party at a venue (``ip:127.0.0.1``, ``account:demo``) with its
    windows, request counts and ban state."""

    key: str
    policy: BanPolicy
    windows: dict[str, Window] = field(default_factory=dict)
    requests: int = 0
    status_429: int = 0
    status_418: int = 0
    backoff_until: int = 0
    """Told to back off (a 429) until then."""
    ignored_backoff: int = 0
    banned_until: int = 0
    bans: int = 0

    def window(self, name: str, limit: int, interval_s: int, *, enforced: bool = True) -> Window:
        w = self.windows.get(name)
        if w is None:
            w = self.windows[name] = Window(name, limit, interval_s, enforced)
        return w

    def ban_left(self, now: int) -> int:
        """Seconds of ban left (0 = not banned)."""
        return max(0, -(-(self.banned_until - now) // NS)) if self.banned_until > now else 0

    def arrive(self, now: int) -> int:
        """Count a request; returns the seconds of ban it meets (0 = none).

        A request sent while told to back off counts against the client; past
        ``requests_after_429`` of them the scope is banned, 2 minutes first, doubling for
        repeat offenders up to ``max_ban_s``."""
        self.requests += 1
        if self.ban_left(now):
            self.status_418 += 1
            return self.ban_left(now)
        if now < self.backoff_until:
            self.ignored_backoff += 1
            if self.ignored_backoff > self.policy.requests_after_429:
                duration = min(self.policy.first_ban_s * 2 ** self.bans, self.policy.max_ban_s)
                self.banned_until = now + duration * NS
                self.bans += 1
                self.ignored_backoff = 0
                self.status_418 += 1
                return duration
        return 0

    def limited(self, now: int, window: Window, *, backoff: bool = True) -> int:
        """Record a refusal by ``window``; returns Retry-After seconds."""
        window.exceeded += 1
        self.status_429 += 1
        retry_after = window.seconds_to_reset(now)
        if backoff:
            self.backoff_until = max(self.backoff_until, now + retry_after * NS)
        return retry_after

    def snapshot(self, now: int) -> dict:
        return {
            "requests": self.requests, "status_429": self.status_429, "status_418": self.status_418,
            "bans": self.bans, "banned_for_s": self.ban_left(now),
            "windows": {name: w.snapshot(now) for name, w in self.windows.items()},
            "exceeded": any(w.exceeded for w in self.windows.values()) or self.status_418 > 0,
        }


class RateLimits:
    """All scopes of one venue."""

    def __init__(self, policy: BanPolicy) -> None:
        self.policy = policy
        self.scopes: dict[str, Scope] = {}

    def scope(self, key: str) -> Scope:
        s = self.scopes.get(key)
        if s is None:
            s = self.scopes[key] = Scope(key, self.policy)
        return s

    def snapshot(self, now: int) -> dict:
        return {key: s.snapshot(now) for key, s in sorted(self.scopes.items())}
