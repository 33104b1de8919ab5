"""The recorded-traffic format of ../shared/data/recorded (see its README): every kind
of line reads back, and what RecordingWriter writes reads back the same."""

from __future__ import annotations

import io

from services.ingestor.recording import Connect, HttpResponse, Received, RecordingWriter, Sent, parse_line, read_records


def test_every_line_kind_of_the_shared_recordings_parses(shared_data):
    recorded = shared_data / "recorded"
    kinds = {type(r) for name in ("KRAKEN.ws.48.0", "BINANCE.http.0.0") for r in read_records(recorded / name)}
    assert kinds == {Connect, Sent, Received, HttpResponse}
    # Upbit frames are Python bytes literals (UPBIT.ws.62.0)
    binary = next(r for r in read_records(recorded / "UPBIT.ws.62.0") if isinstance(r, Received))
    assert isinstance(binary.data, bytes) and binary.data.startswith(b"{")


def test_written_records_read_back():
    out = io.StringIO()
    w = RecordingWriter(out)
    w.connect("wss://ws.kraken.com")
    w.sent("wss://ws.kraken.com", '{"event":"subscribe"}')
    w.received('{\n"event": "heartbeat"}', 1618678133556165200)
    w.received(b'{"ty":"trade"}', 1618678133556165200)
    w.http("https://api.binance.com/api/v3/depth?symbol=BTCUSDT", b'{"lastUpdateId": 1}')
    records = [parse_line(line) for line in out.getvalue().splitlines()]
    assert [type(r) for r in records] == [Connect, Sent, Received, Received, HttpResponse]
    assert records[2] == Received(1618678133.5561652, '{ "event": "heartbeat"}')  # one record per line
    assert records[3].data == b'{"ty":"trade"}'
    assert records[4].url.endswith("symbol=BTCUSDT") and records[4].body == '{"lastUpdateId": 1}'
    assert w.frames == 2
