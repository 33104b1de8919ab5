"""cryptofeed 2.4.1's message handler on the same recorded frames, for comparison.

Runs in a separate virtualenv that has cryptofeed==2.4.1 (``make bench-ingest`` creates
``.venv-cryptofeed``); prints one JSON object: per venue, frames handled and frames/s
counted over the time spent inside cryptofeed's handler (file reading excluded), best of
``--rounds``. cryptofeed's own ``raw_data_collection.playback`` drives the feed; exbus
only wraps the handler it returns with a timer.

Each venue runs twice: with cryptofeed's default (``checksum_validation=False``: Kraken and
OKX book checksums are not checked) and with ``checksum_validation=True``, which checks
what exbus always checks (the like-for-like comparison for venues that send checksums).

    .venv-cryptofeed/bin/python bench/cryptofeed_handler.py --data ../shared/data/recorded
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

FILES = {  # cryptofeed's playback needs the config file (venue.0), the http file and the ws files
    "binance": ("BINANCE", ["BINANCE.0", "BINANCE.http.0.0", "BINANCE.ws.1.0"]),
    "kraken": ("KRAKEN", ["KRAKEN.0", "KRAKEN.ws.48.0", "KRAKEN.ws.49.0", "KRAKEN.ws.50.0"]),
    "okx": ("OKX", ["OKX.0", "OKX.ws.1.0"]),
    "bitfinex": ("BITFINEX", ["BITFINEX.0", "BITFINEX.ws.11.0"]),
    "upbit": ("UPBIT", ["UPBIT.0", "UPBIT.ws.62.0"]),
}


def timed_connect(feed_cls: type, clock: dict) -> None:
    """Wrap every handler the feed's connect() yields so time inside it is summed."""
    original = feed_cls.connect

    def connect(self):  # type: ignore[no-untyped-def]
        for conn, sub, handler, auth in original(self):
            async def timed(message, ws, timestamp, _handler=handler):  # type: ignore[no-untyped-def]
                t0 = time.perf_counter()
                try:
                    return await _handler(message, ws, timestamp)
                finally:
                    clock["seconds"] += time.perf_counter() - t0
                    clock["frames"] += 1
            yield conn, sub, timed, auth

    feed_cls.connect = connect


def checksum_validation(on: bool) -> None:
    """Make every feed created from now on validate book checksums (``on``) or not
    (cryptofeed's default); ``playback`` offers no parameter for it."""
    from cryptofeed.feed import Feed

    original = getattr(Feed, "_exbus_original_init", Feed.__init__)
    Feed._exbus_original_init = original

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        kwargs["checksum_validation"] = on
        original(self, *args, **kwargs)

    Feed.__init__ = init


def run(venue: str, data: Path, rounds: int) -> dict:
    from cryptofeed.exchanges import EXCHANGE_MAP
    from cryptofeed.raw_data_collection import playback

    name, files = FILES[venue]
    best = None
    for _ in range(rounds):
        clock = {"seconds": 0.0, "frames": 0}
        feed_cls = EXCHANGE_MAP[name]
        original = feed_cls.connect
        timed_connect(feed_cls, clock)
        try:
            playback(name, [str(data / f) for f in files])
        finally:
            feed_cls.connect = original
        rate = clock["frames"] / clock["seconds"] if clock["seconds"] else 0.0
        if best is None or rate > best["frames_per_s"]:
            best = {"frames": clock["frames"], "seconds": round(clock["seconds"], 4), "frames_per_s": round(rate)}
    return best or {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--venues", default=",".join(FILES))
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    import cryptofeed

    out = {"cryptofeed": cryptofeed.__version__ if hasattr(cryptofeed, "__version__") else "2.4.1",
           "checksum_validation": "frames_per_s: off (cryptofeed's default); "
                                  "checksum_validation.frames_per_s: on", "venues": {}}
    for venue in args.venues.split(","):
        row: dict = {}
        for on in (False, True):
            checksum_validation(on)
            try:
                result = run(venue, args.data, args.rounds)
            except Exception as e:  # a venue cryptofeed cannot play back is reported, not fatal
                result = {"error": f"{type(e).__name__}: {e}"}
            if on:
                row["checksum_validation"] = result
            else:
                row.update(result)
        out["venues"][venue] = row
    print(json.dumps(out))


if __name__ == "__main__":
    main()
