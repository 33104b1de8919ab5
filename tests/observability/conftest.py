"""Helpers of the observability tests: scrape a /metrics endpoint and read its samples."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

import aiohttp

from services.observability.settings import ObservabilitySettings

SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'(?P<k>[a-zA-Z_][a-zA-Z0-9_]*)="(?P<v>(?:[^"\\]|\\.)*)"')

FREE_PORTS = ObservabilitySettings(host="127.0.0.1", ingestor_port=0, executor_port=0, vault_port=0)
"""Every service on a free loopback port (tests run beside each other)."""


class Scrape:
    """The samples of one scrape, by (name, labels)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            m = SAMPLE.match(line)
            assert m is not None, f"not a Prometheus sample line: {line!r}"
            labels = frozenset((l["k"], l["v"]) for l in LABEL.finditer(m["labels"] or ""))
            self.samples[(m["name"], labels)] = float(m["value"])

    def value(self, name: str, **labels: str) -> float:
        """The sample's value, 0 when the series does not exist (yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of every sample named ``name``."""
        return [dict(labels) for (n, labels) in self.samples if n == name]


async def get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as r:
            return r.status, r.headers.get("Content-Type", ""), await r.text()


async def scrape(base_url: str) -> Scrape:
    status, ctype, body = await get(f"{base_url}/metrics")
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
    return Scrape(body)


async def eventually(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Wait (polling every 50 ms) until ``check()`` (sync or async) is truthy; returns it."""
    async def loop() -> Any:
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout}s") from None
