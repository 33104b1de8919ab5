"""Upbit WebSocket v1 market data (https://docs.upbit.com, "WebSocket"): the Upbit-like
protocol of services.venues.upbitlike, in the SIMPLE format the recordings use."""

from __future__ import annotations

from services.venues.upbitlike import UpbitLikeWs


class UpbitWs(UpbitLikeWs):
    venue = "upbit"
    url = "wss://api.upbit.com/websocket/v1"
    format = "SIMPLE"


ADAPTER = UpbitWs
