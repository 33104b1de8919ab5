"""Venue adapters, one package per exchange (``services.venues.<venue>``): ``rest.py``
(sans-IO REST: signing, requests, parsing) and ``ws.py`` (sans-IO WebSocket parsing).
Shared machinery: base.py, errors.py, signing.py, rules.py, http.py (REST transport),
wsbase.py, book.py, checksum.py."""

from __future__ import annotations

import importlib

from services.venues.base import RestAdapter


def rest_adapter(venue: str, base_url: str | None = None, headers: dict[str, str] | None = None) -> RestAdapter:
    """The REST adapter of ``venue`` (``services.venues.<venue>.rest.ADAPTER``), optionally
    pointed at another base URL (simulator, replay, a testnet) with extra ``headers`` on
    every request (a testnet's, services.venues.environments)."""
    name = f"services.venues.{venue}.rest"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and name.startswith(e.name):
            raise ValueError(f"no REST adapter for venue {venue!r}") from None
        raise
    return module.ADAPTER(base_url, headers)
