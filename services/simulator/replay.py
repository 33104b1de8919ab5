"""Replays recorded frames in a loop at the recorded pace (times ``speed``)."""

from __future__ import annotations

import asyncio
from typing import Callable

from services.simulator.recorded import Frame

LOOP_GAP_S = 0.1
"""Pause between the end of the recording and its next pass (recorded seconds)."""


async def replay_forever(frames: list[Frame], speed: float, emit: Callable[[Frame, int], None]) -> None:
    """Call ``emit(frame, pass_number)`` for every frame, pass after pass, until cancelled."""
    if not frames:
        return
    speed = max(speed, 1e-6)
    n = 0
    while True:
        previous = frames[0].ts
        for frame in frames:
            delay = (frame.ts - previous) / speed
            previous = frame.ts
            if delay > 0:
                await asyncio.sleep(delay)
            emit(frame, n)
        n += 1
        await asyncio.sleep(LOOP_GAP_S / speed)
