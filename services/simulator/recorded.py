"""Readers for the recorded exchange traffic in ../shared/data/recorded (see its README).

Line formats:
- ``URL <-> T``: a WebSocket connection opened at unix time T;
- ``URL <- T: TEXT``: a message we sent;
- ``T: FRAME``: a frame received at T (Upbit frames as a Python bytes literal ``b'...'``);
- ``URL -> T: BODY``: a REST response to a GET of URL.

JSON numbers are decoded as Decimal (Upbit sends prices as JSON numbers), so nothing
recorded is ever rounded through a float.
"""

from __future__ import annotations

import ast
import functools
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import msgspec

_decoder = msgspec.json.Decoder(float_hook=Decimal)


class RestResponse(NamedTuple):
    url: str
    ts: float
    body: Any


class Frame(NamedTuple):
    ts: float
    """Unix time (seconds) the frame was received."""
    payload: Any


def decode_json(data: bytes | str) -> Any:
    """JSON with floats as Decimal."""
    return _decoder.decode(data)


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.strip():
                yield line


def read_rest(path: Path) -> list[RestResponse]:
    """The ``URL -> T: BODY`` records of a file, bodies decoded."""
    out = []
    for line in _lines(path):
        head, sep, body = line.partition(": ")
        url, arrow, ts = head.rpartition(" -> ")
        if sep and arrow:
            out.append(RestResponse(url, float(ts), decode_json(body)))
    return out


def read_frames(path: Path) -> list[Frame]:
    """The received frames (``T: FRAME``) of a WebSocket recording, decoded."""
    out = []
    for line in _lines(path):
        if line.startswith(("ws://", "wss://")):
            continue  # connection opened / message sent
        ts, sep, body = line.partition(": ")
        if not sep:
            continue
        if body.startswith(("b'", 'b"')):
            body = ast.literal_eval(body).decode("utf-8")
        out.append(Frame(float(ts), decode_json(body)))
    return out


class BinanceRecording(NamedTuple):
    exchange_info: dict[str, Any]
    depth: dict[str, dict[str, Any]]
    """Symbol -> /api/v3/depth snapshot (lastUpdateId, bids, asks)."""
    frames: list[Frame]
    """Combined-stream frames: {"stream": ..., "data": ...}."""


class UpbitRecording(NamedTuple):
    markets: list[dict[str, Any]]
    frames: list[Frame]
    """websocket/v1 frames in SIMPLE format."""


@functools.lru_cache(maxsize=4)
def load_binance(directory: Path) -> BinanceRecording:
    """(Read once per process; treat as read-only.) BINANCE.0 (exchangeInfo), BINANCE.http.0.0 (depth snapshots), BINANCE.ws.1.0 (streams)."""
    (info,) = [r.body for r in read_rest(directory / "BINANCE.0") if "/exchangeInfo" in r.url]
    depth = {}
    for r in read_rest(directory / "BINANCE.http.0.0"):
        if "/api/v3/depth" in r.url:
            symbol = r.url.split("symbol=", 1)[1].split("&", 1)[0]
            depth[symbol] = r.body
    return BinanceRecording(info, depth, read_frames(directory / "BINANCE.ws.1.0"))


@functools.lru_cache(maxsize=4)
def load_upbit(directory: Path) -> UpbitRecording:
    """(Read once per process; treat as read-only.) UPBIT.0 (/v1/market/all) and UPBIT.ws.62.0 (trade and orderbook frames)."""
    (markets,) = [r.body for r in read_rest(directory / "UPBIT.0") if "/market/all" in r.url]
    return UpbitRecording(markets, read_frames(directory / "UPBIT.ws.62.0"))
