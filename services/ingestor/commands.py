"""Subcommands of the market-data ingestor: ingest, record, replay."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from schemas.common import VENUES
from schemas.market import CHANNELS
from services.config import config_for_command
from services.errors import CommandError


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def register(sub: Any) -> None:
    """Add this package's subcommands to the ``exbus`` parser."""
    p = sub.add_parser("ingest", help="run the market-data ingestor (venues from --venue or the config file)")
    p.add_argument("--venue", choices=VENUES, help="one venue (default: every [ingestor.venues.*] of the config)")
    p.add_argument("--symbols", type=_list, help="BASE-QUOTE symbols, comma separated")
    p.add_argument("--channels", type=_list, default=list(CHANNELS), help="trade,ticker,book,bbo (default: all)")
    p.add_argument("--capture", action="store_true", help="also capture md.> into the JetStream stream MD")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("record", help="record a venue's live WebSocket (and REST snapshot) traffic to a file")
    p.add_argument("venue", choices=VENUES)
    p.add_argument("--symbols", type=_list, required=True)
    p.add_argument("--channels", type=_list, default=list(CHANNELS))
    p.add_argument("--out", required=True, help="file to write, in the format of ../shared/data/recorded")
    p.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--url", default="", help="WebSocket endpoint override")
    p.set_defaults(handler=cmd_record)

    p = sub.add_parser("replay", help="serve a recording to the ingestor over loopback WebSocket/HTTP servers")
    p.add_argument("files", nargs="+", help="recording file(s) of one venue, e.g. .../KRAKEN.ws.50.0")
    p.add_argument("--speed", default="max", help="max (default) or a multiple of the recorded pace, e.g. 10")
    p.add_argument("--nats", default=None, help="NATS URL to publish on (default: $NATS_URL, else a private server)")
    p.add_argument("--venue", choices=VENUES, help="default: from the file name")
    p.add_argument("--http", action="append", default=[], help="extra file of recorded REST responses")
    p.add_argument("--symbols", type=_list, default=None, help="default: what the recording subscribed")
    p.add_argument("--channels", type=_list, default=None, help="default: what the recording subscribed")
    p.set_defaults(handler=cmd_replay)


def cmd_ingest(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import Bus, run_until_signal
    from services.ingestor.service import FeedSpec, check_specs, run_ingestor, specs_from_settings

    config = config_for_command(args)
    if args.capture:
        config.streams.md_capture = True
    if args.venue:
        if not args.symbols:
            raise CommandError("--venue needs --symbols")
        target: Any = [FeedSpec(venue=args.venue, symbols=args.symbols, channels=args.channels,
                                environment=config.environments().get(args.venue, "live"))]
    elif config.ingestor.venues:
        target = config
    else:
        raise CommandError("give --venue and --symbols, or [ingestor.venues.<venue>] in the config file")
    specs = target if isinstance(target, list) else specs_from_settings(config.ingestor, config.environments())
    try:
        check_specs(specs)
    except ValueError as e:
        raise CommandError(str(e)) from None

    async def main(stop: asyncio.Event) -> int:
        from services.observability.catalog import INGESTOR
        from services.observability.runtime import Observability

        shared: list[Any] = []  # the feed ownership, when the feeds are shared

        def subscribed() -> bool:
            """Ready when the feeds this process runs are subscribed (shared: the ones it owns)."""
            if shared:
                return shared[0].problem is None and INGESTOR.feeds_subscribed(
                    shared[0].venue_of(f) for f in shared[0].owned)
            return INGESTOR.feeds_subscribed(s.venue for s in specs)

        async with Bus(config, name="exbus-ingest") as bus, \
                Observability("ingestor", config.observability, ready=subscribed) as observability:
            await observability.register(bus.nc)
            await run_ingestor(bus.nc, target, stop, share=config.ingestor, on_ownership=shared.append,
                               backoff=(config.ingestor.reconnect_initial_s, config.ingestor.reconnect_max_s))
        return 0

    return run_until_signal(main)


def cmd_record(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import run_until_signal
    from services.ingestor.recording import RecordingWriter
    from services.ingestor.service import FeedSpec, Ingestor

    config_for_command(args)

    async def main(stop: asyncio.Event) -> int:
        with open(args.out, "w", encoding="utf-8") as out:
            writer = RecordingWriter(out)
            spec = FeedSpec(venue=args.venue, symbols=args.symbols, channels=args.channels, url=args.url)
            ingestor = Ingestor(None, [spec], stop, tap=writer)
            if args.seconds is not None:
                asyncio.get_running_loop().call_later(args.seconds, stop.set)
            await ingestor.run()
            writer.flush()
        print(json.dumps({"venue": args.venue, "out": args.out, "frames": writer.frames}), flush=True)
        return 0

    return run_until_signal(main)


def cmd_replay(args: argparse.Namespace) -> int:
    from services.bus.connect import connect
    from services.bus.embedded import EmbeddedNats
    from services.bus.lifecycle import run_until_signal
    from services.ingestor.replay import load_recording, run_replay
    from services.venues.wsbase import ws_adapter

    config = config_for_command(args)
    try:
        speed = None if args.speed == "max" else float(args.speed)
    except ValueError:
        raise CommandError(f"--speed {args.speed!r}: max or a number, e.g. 10") from None
    if speed is not None and not speed > 0:
        raise CommandError(f"--speed {args.speed!r} must be > 0")
    for f in [*args.files, *args.http]:
        if not Path(f).is_file():
            raise CommandError(f"{f} does not exist")
    try:
        recording = load_recording(args.files, args.http, venue=args.venue)
    except (OSError, ValueError) as e:  # UnicodeDecodeError and decode errors are ValueErrors
        raise CommandError(f"cannot read the recording: {e}") from None
    try:
        ws_adapter(recording.venue)
    except ValueError as e:
        raise CommandError(str(e)) from None

    async def main(stop: asyncio.Event) -> int:
        url = args.nats or config.nats.url
        with tempfile.TemporaryDirectory(prefix="exbus-replay-") as tmp:
            server = None if url else EmbeddedNats(Path(tmp) / "nats")
            if server is not None:
                url = await server.start()
            nc = await connect(config.nats, url=url, name="exbus-replay", one_shot=True)
            try:
                summary, _ = await run_replay(nc, recording, speed=speed, symbols=args.symbols,
                                              channels=args.channels, stop=stop)
            finally:
                await nc.drain()
                if server is not None:
                    await server.stop()
        print(json.dumps(summary), flush=True)
        return 0

    return run_until_signal(main)
