"""Bithumb WebSocket v1 market data (wss://ws-api.bithumb.com/websocket/v1,
apidocs.bithumb.com "WebSocket"): the Upbit-like protocol of services.venues.upbitlike,
DEFAULT format. The legacy pubwss feed of the recordings is not used."""

from __future__ import annotations

from services.venues.upbitlike import UpbitLikeWs


class BithumbWs(UpbitLikeWs):
    venue = "bithumb"
    url = "wss://ws-api.bithumb.com/websocket/v1"
    format = "DEFAULT"


ADAPTER = BithumbWs
