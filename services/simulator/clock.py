"""The simulator's notion of now: wall time by default, a manual clock in tests, so that
rate-limit windows, recvWindow checks and order timestamps are deterministic there."""

from __future__ import annotations

import time
from typing import Callable

Clock = Callable[[], int]
"""Returns the current time in integer nanoseconds since the epoch."""


def wall_clock() -> int:
    return time.time_ns()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ns: int | None = None) -> None:
        self.now_ns = time.time_ns() if start_ns is None else start_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * 1_000_000_000)

    def ms(self) -> int:
        return self.now_ns // 1_000_000
