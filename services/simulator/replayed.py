"""The venues the simulator does not speak, as paper feeds for the demo: recorded real
traffic (Kraken, OKX, Bitfinex, from ../shared/data/recorded) and recordings built from
documented examples (Coinbase, Korbit, Coinone, Bithumb v1; see recordings/README.md),
each served in a loop by a replay server to the same ingestor code as live feeds."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from services.ingestor.replay import ReplayServer, load_recording
from services.ingestor.service import FeedSpec
from services.simulator.config import DEFAULT_RECORDED_DIR
from services.venues.wsbase import ws_adapter

DOCS_DIR = Path(__file__).resolve().parent / "recordings"

REPLAYED: dict[str, tuple[list[Path], list[str] | None]] = {
    "kraken": ([DEFAULT_RECORDED_DIR / f"KRAKEN.ws.{n}.0" for n in (48, 49, 50)], None),
    "okx": ([DEFAULT_RECORDED_DIR / "OKX.ws.1.0"], None),
    "bitfinex": ([DEFAULT_RECORDED_DIR / "BITFINEX.ws.11.0"], None),
    "coinbase": ([DOCS_DIR / "COINBASE.ws.docs"], ["BTC-USD"]),
    "korbit": ([DOCS_DIR / "KORBIT.ws.docs"], ["BTC-KRW"]),
    "coinone": ([DOCS_DIR / "COINONE.ws.docs"], ["BTC-KRW"]),
    "bithumb": ([DOCS_DIR / "BITHUMB.ws.docs"], ["BTC-KRW"]),
}
"""Venue -> recording files and, where the recording does not say, the symbols."""


async def start_replayed_venues(stack: AsyncExitStack, speed: float = 1.0) -> list[FeedSpec]:
    """Start a looping replay server per venue on ``stack``; returns the ingestor feeds."""
    specs = []
    for venue, (files, symbols) in REPLAYED.items():
        recording = load_recording(files, venue=venue)
        server = await stack.enter_async_context(ReplayServer(recording, speed=speed, repeat=True))
        recorded = ws_adapter(venue)().recorded_subscriptions(recording.url, recording.sent)
        specs.append(FeedSpec(
            venue=venue, symbols=symbols or sorted({s.symbol for s in recorded}),
            channels=sorted({s.channel for s in recorded}) if recorded else ["trade", "ticker", "book"],
            url=server.ws_url, rest_url=server.http_url, max_streams_per_connection=10**6,
            prepare=lambda a, r=recording: a.recorded_subscriptions(r.url, r.sent), replayed=True,
        ))
    return specs
