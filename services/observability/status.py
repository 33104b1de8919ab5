"""`exbus status`: every running exbus replica and the order streams' lag, in one table.

Replicas are found with the NATS services framework's discovery: ``$SRV.PING`` (every
replica answers), then ``$SRV.INFO.<name>.<id>`` and ``$SRV.STATS.<name>.<id>`` of
each exbus one. STATS carries the replica's readiness and metrics summary (requests,
errors, breakdown). The lag rows come from JetStream: the executors' durable consumer
on ORDERS (commands not yet delivered, delivered but unacked) and the consumers of
ORDER_EVENTS (events a reader has not fetched yet).

    exbus status            # table
    exbus status --json     # {"services": [...], "streams": [...]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

DISCOVERY_TIMEOUT_S = 1.0


async def _gather_replies(nc: Any, subject: str, timeout_s: float) -> list[dict[str, Any]]:
    """Every reply to one request on ``subject`` within ``timeout_s`` (scatter-gather)."""
    inbox = nc.new_inbox()
    replies: list[dict[str, Any]] = []

    async def on_reply(msg: Any) -> None:
        try:
            replies.append(json.loads(msg.data))
        except ValueError:
            pass

    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        await nc.publish(subject, b"", reply=inbox)
        await nc.flush()
        await asyncio.sleep(timeout_s)
    finally:
        await sub.unsubscribe()
    return replies


async def _request(nc: Any, subject: str, timeout_s: float) -> dict[str, Any] | None:
    try:
        return json.loads((await nc.request(subject, b"", timeout=timeout_s)).data)
    except Exception:  # the replica went away between PING and this request
        return None


def _uptime_s(started: str, now: datetime) -> float | None:
    try:
        t = datetime.strptime(started[:26].rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return max(0.0, (now - t).total_seconds())


async def replicas(nc: Any, timeout_s: float = DISCOVERY_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every exbus replica that answers $SRV.PING, with its INFO and STATS."""
    from services.observability.micro import SERVICE_PREFIX  # nats.micro: loaded when asked

    pings = [p for p in await _gather_replies(nc, "$SRV.PING", timeout_s)
             if str(p.get("name", "")).startswith(SERVICE_PREFIX)]

    async def describe(ping: dict[str, Any]) -> dict[str, Any]:
        name, sid = ping["name"], ping["id"]
        info, stats = await asyncio.gather(_request(nc, f"$SRV.INFO.{name}.{sid}", timeout_s),
                                           _request(nc, f"$SRV.STATS.{name}.{sid}", timeout_s))
        data: dict[str, Any] = {}
        for endpoint in (stats or {}).get("endpoints") or []:
            if isinstance(endpoint.get("data"), dict):
                data = endpoint["data"]
        meta = ping.get("metadata") or {}
        started = (stats or {}).get("started", "")
        return {
            "service": name, "id": sid, "instance": meta.get("instance", sid), "version": ping.get("version", ""),
            "host": meta.get("host", ""), "metrics_port": meta.get("metrics_port", ""),
            "description": (info or {}).get("description") or "",
            "started": started, "uptime_s": _uptime_s(started, datetime.now(timezone.utc)) if started else None,
            "ready": data.get("ready"), "checks": data.get("checks", {}),
            "requests": data.get("requests"), "errors": data.get("errors"),
            "environments": data.get("environments") or {},
            "detail": {k: v for k, v in data.items()
                       if k not in ("ready", "checks", "requests", "errors", "metrics_url", "environments")},
        }

    rows = await asyncio.gather(*(describe(p) for p in pings))
    return sorted(rows, key=lambda r: (r["service"], r["instance"]))


async def stream_lag(nc: Any) -> list[dict[str, Any]]:
    """Lag of ORDERS (the executors' consumer) and ORDER_EVENTS (its readers)."""
    from nats.js.errors import NotFoundError

    from services.bus.streams import ORDER_EVENTS, ORDERS
    from services.executor.service import DURABLE

    js = nc.jetstream()
    rows: list[dict[str, Any]] = []
    for stream in (ORDERS, ORDER_EVENTS):
        try:
            info = await js.stream_info(stream)
        except NotFoundError:
            rows.append({"stream": stream, "missing": True})
            continue
        row: dict[str, Any] = {"stream": stream, "messages": info.state.messages, "consumers": info.state.consumer_count}
        if stream == ORDERS:
            try:
                c = await js.consumer_info(ORDERS, DURABLE)
            except NotFoundError:
                row.update(consumer=DURABLE, pending=None)
            else:
                row.update(consumer=DURABLE, pending=c.num_pending, ack_pending=c.num_ack_pending,
                           redelivered=c.num_redelivered)
        else:
            consumers = await js.consumers_info(stream)
            row.update(consumer="*", pending=max((c.num_pending or 0 for c in consumers), default=0),
                       ack_pending=sum(c.num_ack_pending or 0 for c in consumers))
        rows.append(row)
    return rows


async def collect(nc: Any, timeout_s: float = DISCOVERY_TIMEOUT_S) -> dict[str, Any]:
    """The whole picture `exbus status` prints."""
    services, streams = await asyncio.gather(replicas(nc, timeout_s), stream_lag(nc))
    return {"services": services, "streams": streams}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


def _detail(detail: dict[str, Any]) -> str:
    parts = []
    for key, value in detail.items():
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "-"
        elif isinstance(value, list):
            value = ",".join(map(str, value)) or "-"
        parts.append(f"{key}={value}")
    return " ".join(parts)


def _environments(environments: dict[str, str]) -> str:
    """``env:testnet=binance,okx env:live=...``: the venues of a replica by environment."""
    by_env: dict[str, list[str]] = {}
    for venue, environment in sorted(environments.items()):
        by_env.setdefault(environment, []).append(venue)
    return " ".join(f"env:{e}={','.join(v)}" for e, v in sorted(by_env.items(), key=lambda kv: kv[0] != "testnet"))


COLUMNS = ("SERVICE", "INSTANCE", "VERSION", "UPTIME", "READY", "REQUESTS", "ERRORS", "LAG", "DETAIL")


def table(status: dict[str, Any]) -> str:
    """One table: a row per replica, then a row per order stream (LAG = pending messages)."""
    rows = [COLUMNS]
    for r in status["services"]:
        rows.append((r["service"], r["instance"], r["version"], _duration(r["uptime_s"]), _cell(r["ready"]),
                     _cell(r["requests"]), _cell(r["errors"]), "-",
                     " ".join(filter(None, (_environments(r.get("environments") or {}), _detail(r["detail"]))))))
    for s in status["streams"]:
        if s.get("missing"):
            rows.append((f"stream {s['stream']}", "-", "-", "-", "-", "-", "-", "-", "stream missing"))
            continue
        detail = {"messages": s["messages"], "consumers": s["consumers"]}
        if s.get("ack_pending") is not None:
            detail["ack_pending"] = s["ack_pending"]
        if s.get("redelivered") is not None:
            detail["redelivered"] = s["redelivered"]
        rows.append((f"stream {s['stream']}", f"consumer {s['consumer']}", "-", "-", "-", "-", "-",
                     _cell(s.get("pending")), _detail(detail)))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + str(row[-1])
                     for row in rows) + "\n"


def register(sub: Any) -> None:
    p = sub.add_parser("status", help="every running replica (version, uptime, stats) and the order streams' lag")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--timeout", type=float, default=DISCOVERY_TIMEOUT_S,
                   help="seconds to wait for replicas to answer (default %(default)s)")
    p.set_defaults(handler=cmd_status)


def cmd_status(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from services.bus.connect import connect
    from services.config import config_for_command
    from services.errors import CommandError

    config = config_for_command(args)
    if not config.nats.url:
        raise CommandError("set NATS_URL (or nats.url) to the bus the services run on")

    async def main() -> dict[str, Any]:
        nc = await connect(config.nats, name="exbus-status", one_shot=True)
        try:
            return await collect(nc, args.timeout)
        finally:
            await nc.close()

    status = asyncio.run(main())
    out.write(json.dumps(status, indent=2) + "\n" if args.json else table(status))
    out.flush()
    return 0 if status["services"] else 1


__all__ = ["cmd_status", "collect", "register", "replicas", "stream_lag", "table"]
