"""The recorded-traffic format of ../shared/data/recorded (cryptofeed's sample_data
format), read and written. One record per line:

    URL <-> T          a WebSocket connection opened at unix time T (seconds)
    URL <- T: TEXT     a message we sent (subscriptions)
    T: FRAME           a frame received at T; binary frames as a Python bytes literal b'...'
    URL -> T: BODY     a REST response to a GET of URL
"""

from __future__ import annotations

import ast
import time
from decimal import Decimal
from pathlib import Path
from typing import IO, Iterator, Union

import msgspec


class Connect(msgspec.Struct, frozen=True):
    url: str
    ts: float


class Sent(msgspec.Struct, frozen=True):
    url: str
    ts: float
    data: str


class Received(msgspec.Struct, frozen=True):
    ts: float
    data: str | bytes


class HttpResponse(msgspec.Struct, frozen=True):
    url: str
    ts: float
    body: str


Record = Union[Connect, Sent, Received, HttpResponse]


def to_ns(ts: float | str) -> int:
    """A recorded unix time in seconds to integer nanoseconds (exact for the text form)."""
    return int(Decimal(str(ts)) * 1_000_000_000)


def parse_line(line: str) -> Record | None:
    """One line of a recording, or None for a blank line."""
    line = line.rstrip("\n")
    if not line.strip():
        return None
    if line[0].isdigit():
        ts, _, frame = line.partition(": ")
        data: str | bytes = frame
        if frame.startswith(("b'", 'b"')):
            data = ast.literal_eval(frame)
        return Received(float(ts), data)
    url, _, rest = line.partition(" ")
    if rest.startswith("<-> "):
        return Connect(url, float(rest[4:]))
    if rest.startswith("<- "):
        ts, _, text = rest[3:].partition(": ")
        return Sent(url, float(ts), text)
    if rest.startswith("-> "):
        ts, _, body = rest[3:].partition(": ")
        return HttpResponse(url, float(ts), body)
    raise ValueError(f"not a recording line: {line[:80]!r}")


def read_records(path: str | Path) -> Iterator[Record]:
    """Every record of a recording file, in file order."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = parse_line(line)
            if record is not None:
                yield record


def _one_line(text: str) -> str:
    # a raw line break in JSON can only be whitespace between tokens
    return text.replace("\r", " ").replace("\n", " ") if "\n" in text or "\r" in text else text


class RecordingWriter:
    """Writes live traffic in the same format (``exbus record``)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.frames = 0

    @staticmethod
    def _now() -> str:
        return f"{time.time():.7f}".rstrip("0").rstrip(".")

    def connect(self, url: str) -> None:
        self.out.write(f"{url} <-> {self._now()}\n")

    def sent(self, url: str, data: str | bytes) -> None:
        text = data if isinstance(data, str) else data.decode()
        self.out.write(f"{url} <- {self._now()}: {text}\n")

    def received(self, data: str | bytes, ts_recv_ns: int | None = None) -> None:
        ts = f"{ts_recv_ns / 1e9:.7f}".rstrip("0").rstrip(".") if ts_recv_ns is not None else self._now()
        self.out.write(f"{ts}: {_one_line(data) if isinstance(data, str) else repr(data)}\n")
        self.frames += 1

    def http(self, url: str, body: str | bytes) -> None:
        text = body if isinstance(body, str) else body.decode(errors="replace")
        self.out.write(f"{url} -> {self._now()}: {_one_line(text)}\n")

    def flush(self) -> None:
        self.out.flush()


__all__ = ["Connect", "HttpResponse", "Received", "Record", "RecordingWriter", "Sent", "parse_line", "read_records", "to_ns"]
