"""``exbus alert-relay``: Alertmanager's webhook receiver, relaying onto the bus.

Alertmanager (deploy/alertmanager/alertmanager.yml) routes by severity to this relay's
``POST /<route>``; each alert of the webhook payload (version 4) is logged and published
as ``alerts.<severity>.prometheus`` (``details``: alertname, status firing/resolved, the
route, labels), so the rules of deploy/prometheus/alerts.yml reach the same subscribers
as the alerts the services publish themselves. A pager bridge reads ``alerts.>``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

import schemas
from schemas import subjects
from schemas.alerts import SEVERITIES, Alert
from services.logs import get_logger

if TYPE_CHECKING:
    from aiohttp import web

log = get_logger("alert-relay")

MAX_BODY = 1 << 20


class WebhookAlert(msgspec.Struct, kw_only=True):
    status: str = "firing"
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    fingerprint: str = ""


class Webhook(msgspec.Struct, kw_only=True):
    """Alertmanager's webhook payload (the fields the relay reads)."""

    version: str = "4"
    alerts: list[WebhookAlert] = []


def relayed(hook: WebhookAlert, route: str) -> Alert:
    """The bus alert for one Alertmanager alert."""
    severity = hook.labels.get("severity", "warning")
    venue = hook.labels.get("venue")
    name = hook.labels.get("alertname", "unnamed")
    details = {"alertname": name, "status": hook.status, "route": route,
               **{f"label.{k}": v for k, v in hook.labels.items() if k not in ("alertname", "severity")}}
    summary = hook.annotations.get("summary") or name
    now = schemas.now_ns()
    return Alert(alert_id=f"{hook.fingerprint or name}.{now}",
                 severity=severity if severity in SEVERITIES else "warning",  # type: ignore[arg-type]
                 name="prometheus", service="prometheus", key=hook.fingerprint or name,
                 summary=f"[{hook.status}] {summary}"[:500], ts=now,
                 venue=venue if venue in schemas.VENUES else None,  # type: ignore[arg-type]
                 details=details)


def relay_app(nc: Any) -> web.Application:
    """The webhook endpoint: any path is a route name; 400 on a payload that is not one."""
    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            hook = msgspec.json.decode(body, type=Webhook)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            log.warning("webhook refused", error=str(e)[:200])
            return web.json_response({"error": f"not an Alertmanager webhook payload: {e}"}, status=400)
        route = request.match_info.get("route", "") or "default"
        for a in hook.alerts:
            alert = relayed(a, route)
            log.warning("alert relayed", severity=alert.severity, alertname=alert.details["alertname"],
                        status=a.status, route=route, summary=alert.summary)
            await nc.publish(subjects.alert(alert.severity, alert.name), schemas.encode(alert))
        await nc.flush()
        return web.json_response({"relayed": len(hook.alerts)})

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/{route:.*}", receive)
    return app


async def run_relay(nc: Any, host: str, port: int, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """Serve the relay until ``stop``."""
    from aiohttp import web
    runner = web.AppRunner(relay_app(nc))
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    log.info("alert relay listening", host=host, port=port)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def register(sub: Any) -> None:
    """Add ``exbus alert-relay`` to the parser."""
    p = sub.add_parser("alert-relay", help="receive Alertmanager webhooks and publish them on alerts.>")
    p.add_argument("--host", default="0.0.0.0", help="listen address (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=9095, help="listen port (default 9095)")
    p.set_defaults(handler=cmd_alert_relay)


def cmd_alert_relay(args: argparse.Namespace) -> int:
    from services.bus.connect import connect
    from services.bus.lifecycle import run_until_signal
    from services.config import config_for_command

    config = config_for_command(args)
    if not config.nats.url:
        raise SystemExit("exbus alert-relay: set NATS_URL (or nats.url) to the server to publish on")

    async def main(stop: asyncio.Event) -> int:
        nc = await connect(config.nats, name="exbus-alert-relay")
        try:
            await run_relay(nc, args.host, args.port, stop)
        finally:
            await nc.drain()
        return 0

    return run_until_signal(main)


__all__ = ["Webhook", "register", "relay_app", "relayed", "run_relay"]
