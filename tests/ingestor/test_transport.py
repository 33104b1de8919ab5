"""Reconnect pacing: exponential backoff with jitter, capped."""

from __future__ import annotations

from services.ingestor.transport import Backoff


def test_backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half():
    low = Backoff(0.5, 30.0, rng=lambda: 0.0)
    high = Backoff(0.5, 30.0, rng=lambda: 1.0)
    lows = [low.next() for _ in range(9)]
    highs = [high.next() for _ in range(9)]
    assert highs == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert lows == [h / 2 for h in highs]
    high.reset()
    assert high.next() == 0.5


def test_backoff_keeps_working_after_days_of_a_flapping_venue():
    # 2 ** 1024 overflowed a float once: the ingestor stopped after ~1,000 failed reconnects
    backoff = Backoff(0.5, 30.0, rng=lambda: 1.0)
    delays = [backoff.next() for _ in range(5000)]
    assert delays[-1] == 30.0 and max(delays) == 30.0
