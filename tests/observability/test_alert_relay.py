"""`exbus alert-relay`: Alertmanager's webhook payloads onto alerts.<severity>.prometheus,
against a real nats-server; a payload that is not one is refused with 400, nothing published."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import nats

from schemas import decode
from schemas.alerts import Alert
from services.observability.alert_relay import run_relay

# as Alertmanager 0.27 posts it (docs: "webhook_config", version 4), trimmed
WEBHOOK = {
    "version": "4", "groupKey": "{}:{alertname=\"ExbusFeedStale\"}", "truncatedAlerts": 0, "status": "firing",
    "receiver": "critical", "groupLabels": {"alertname": "ExbusFeedStale"},
    "commonLabels": {"alertname": "ExbusFeedStale", "severity": "critical", "venue": "kraken"},
    "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "ExbusFeedStale", "severity": "critical", "venue": "kraken", "system": "exbus"},
        "annotations": {"summary": "market data of kraken is stale"},
        "startsAt": "2026-12-08T02:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph", "fingerprint": "a1b2c3d4e5f60718",
    }],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_alerts_are_published_on_the_bus(nats_url: str) -> None:
    nc = await nats.connect(nats_url)
    got: asyncio.Queue[tuple[str, Alert]] = asyncio.Queue()

    async def on_alert(msg: Any) -> None:
        got.put_nowait((msg.subject, decode(msg.data, Alert)))

    await nc.subscribe("alerts.>", cb=on_alert)
    await nc.flush()
    stop, ready, port = asyncio.Event(), asyncio.Event(), free_port()
    relay = asyncio.create_task(run_relay(nc, "127.0.0.1", port, stop, ready))
    await asyncio.wait_for(ready.wait(), 5)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{port}/critical", json=WEBHOOK) as r:
            assert r.status == 200 and (await r.json()) == {"relayed": 1}
        subject, alert = await asyncio.wait_for(got.get(), 5)
        async with http.post(f"http://127.0.0.1:{port}/critical", data=b"{not json") as r:
            assert r.status == 400 and "not an Alertmanager webhook payload" in (await r.json())["error"]
        async with http.post(f"http://127.0.0.1:{port}/warning", json={"alerts": [{"labels": 5}]}) as r:
            assert r.status == 400
    stop.set()
    await relay
    await nc.flush()
    assert subject == "alerts.critical.prometheus"
    assert (alert.name, alert.severity, alert.venue, alert.key) == ("prometheus", "critical", "kraken", "a1b2c3d4e5f60718")
    assert alert.summary == "[firing] market data of kraken is stale"
    assert alert.details["alertname"] == "ExbusFeedStale" and alert.details["route"] == "critical"
    assert got.empty()  # the refused payloads published nothing
    await nc.close()
