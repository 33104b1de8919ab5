"""`exbus record` writes the recorded-traffic format and `exbus ingest` runs from the
config file, both against a loopback venue serving a real recording.

Source: ../shared/data/recorded/KRAKEN.ws.50.0 (cryptofeed sample_data).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess

import nats
import pytest

from schemas import decode
from schemas.market import BookDelta, MarketData
from decimal import Decimal

from services.ingestor.recording import Connect, Received, RecordingWriter, Sent, read_records
from services.ingestor.replay import ReplayServer, load_recording, run_replay
from services.ingestor.service import FeedSpec, Ingestor

pytestmark = pytest.mark.timeout(60)


async def test_recording_a_session_gives_a_file_that_replays_the_same(shared_data, tmp_path):
    recording = load_recording([shared_data / "recorded" / "KRAKEN.ws.50.0"])
    out = tmp_path / "KRAKEN.ws.1.0"
    async with ReplayServer(recording) as venue:
        with open(out, "w", encoding="utf-8") as f:
            writer = RecordingWriter(f)
            symbols = ["XMR-USD", "WAVES-EUR", "ADA-BTC"]
            spec = FeedSpec(venue="kraken", symbols=symbols, channels=["book"], url=venue.ws_url)
            await Ingestor(None, [spec], asyncio.Event(), reconnect=False, tap=writer).run()
    records = list(read_records(out))
    assert isinstance(records[0], Connect) and records[0].url == venue.ws_url
    sent = [r for r in records if isinstance(r, Sent)]
    assert '"pair":["XMR/USD","WAVES/EUR","ADA/XBT"]' in sent[0].data
    frames = [r.data for r in records if isinstance(r, Received)]
    assert frames == [data for _, data in recording.frames]
    summary, _ = await run_replay(None, load_recording([out]))
    assert summary["frames"] == len(frames) and summary["gaps"] == 0
    assert summary["published"]["book"] == sum(1 for d in frames if d.startswith("[") and (
        '"XMR/USD"' in d or '"WAVES/EUR"' in d or '"ADA/XBT"' in d))


async def test_exbus_ingest_runs_the_venues_of_the_config_file_and_captures_into_md(nats_url, shared_data, tmp_path, exbus_cmd, clean_env):
    recording = load_recording([shared_data / "recorded" / "KRAKEN.ws.50.0"])
    async with ReplayServer(recording) as venue:
        config = tmp_path / "exbus.toml"
        config.write_text(
            f'[nats]\nurl = "{nats_url}"\n\n[ingestor.venues.kraken]\nsymbols = ["XMR-USD"]\n'
            f'channels = ["book"]\nurl = "{venue.ws_url}"\n')
        nc = await nats.connect(nats_url)
        got: list = []
        enough = asyncio.Event()

        async def on_msg(msg):
            got.append(decode(msg.data, MarketData))
            if sum(isinstance(m, BookDelta) for m in got) >= 100:
                enough.set()

        await nc.subscribe("md.kraken.book.XMR-USD", cb=on_msg)
        proc = await asyncio.create_subprocess_exec(
            *exbus_cmd, "--config", str(config), "ingest", "--capture", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=clean_env)
        try:
            await asyncio.wait_for(enough.wait(), 40)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()[-2000:]
        assert got[0].__class__.__name__ == "BookSnapshot" and got[0].symbol == "XMR-USD"
        captured = await nc.jetstream().stream_info("MD")
        assert captured.state.messages >= len(got)  # the book messages and the status events
        await nc.drain()


async def test_replay_serves_recorded_rest_snapshots_to_the_resync(shared_data):
    """The real Binance REST adapter's depth request, answered by the replay's HTTP server."""
    recording = load_recording([shared_data / "recorded" / "BINANCE.ws.1.0"])  # + BINANCE.http.0.0 beside it
    summary, ingestor = await run_replay(None, recording, symbols=["NKN-USDT"], channels=["book"])
    book = ingestor.feeds["binance"].books["NKN-USDT"]
    # synced to the recorded snapshot, then every recorded diff: the last one's update id
    assert summary["gaps"] == 0 and summary["published"]["book"] >= 1 and book.synced and book.last == 499870179
    # the top of book the recorded snapshot plus every diff lead to (as in test_book_integrity_recorded)
    assert (book.book.best_bid(), book.book.best_ask()) == (
        (Decimal("0.35270000"), Decimal("9602")), (Decimal("0.35310000"), Decimal("152")))
