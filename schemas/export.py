"""Generate the published contract: one JSON Schema per message and an AsyncAPI 3.0
document of every subject (``exbus schema export``). The generated files are committed
under schemas/generated/ and a test fails when they are stale."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import msgspec

from schemas import alerts, market, orders, queries, vault
from schemas.alerts import ALERT_NAMES, SEVERITIES
from schemas.common import VENUES

GENERATED_DIR = Path(__file__).resolve().parent / "generated"

MESSAGES: dict[str, Any] = {
    "Trade": market.Trade,
    "Ticker": market.Ticker,
    "BookSnapshot": market.BookSnapshot,
    "BookDelta": market.BookDelta,
    "BookMessage": market.BookMessage,
    "BBO": market.BBO,
    "FeedStatus": market.FeedStatus,
    "PlaceOrder": orders.PlaceOrder,
    "CancelOrder": orders.CancelOrder,
    "OrderCommand": orders.OrderCommand,
    "OrderEvent": orders.OrderEvent,
    "DeadLetter": orders.DeadLetter,
    "Query": queries.Query,
    "QueryReply": queries.QueryReply,
    "CredentialRequest": vault.CredentialRequest,
    "VaultReply": vault.VaultReply,
    "AuditEvent": vault.AuditEvent,
    "Revocation": vault.Revocation,
    "Alert": alerts.Alert,
}
"""Every message on the bus, by the name its schema file gets."""

_P = {
    "venue": {"description": "venue id", "enum": list(VENUES)},
    "symbol": {"description": "BASE-QUOTE, upper case"},
    "account": {"description": "account name"},
    "client_order_id": {"description": "client order id"},
    "query": {"description": "query name"},
    "severity": {"description": "alert severity", "enum": list(SEVERITIES)},
    "name": {"description": "alert name", "enum": list(ALERT_NAMES)},
}

# channel id -> (address, parameters, message, description)
CHANNELS: dict[str, tuple[str, list[str], str, str]] = {
    "marketTrade": ("md.{venue}.trade.{symbol}", ["venue", "symbol"], "Trade", "Public trades"),
    "marketTicker": ("md.{venue}.ticker.{symbol}", ["venue", "symbol"], "Ticker", "Tickers"),
    "marketBook": ("md.{venue}.book.{symbol}", ["venue", "symbol"], "BookMessage", "L2 book snapshots and deltas, with sequence"),
    "marketBbo": ("md.{venue}.bbo.{symbol}", ["venue", "symbol"], "BBO", "Best bid and offer"),
    "marketStatus": ("md.{venue}.status", ["venue"], "FeedStatus", "Feed health: connected, gap, resynced, stale"),
    "orderSubmit": ("orders.submit.{venue}.{account}", ["venue", "account"], "OrderCommand", "Order commands (stream ORDERS, work queue; Nats-Msg-Id = command_id)"),
    "orderEvents": ("orders.events.{venue}.{account}.{client_order_id}", ["venue", "account", "client_order_id"], "OrderEvent", "Order events (stream ORDER_EVENTS)"),
    "orderDeadLetter": ("orders.deadletter.{venue}.{account}", ["venue", "account"], "DeadLetter", "Undecodable commands with the reason"),
    "privateQuery": ("venue.{venue}.{account}.{query}", ["venue", "account", "query"], "Query", "Private queries (request/reply, executors' queue group)"),
    "publicQuery": ("venue.{venue}.public.{query}", ["venue", "query"], "Query", "Public queries (request/reply)"),
    "vaultCredentials": ("vault.credentials.get", [], "CredentialRequest", "Credential requests (request/reply, vault queue group)"),
    "vaultAudit": ("vault.audit", [], "AuditEvent", "Vault audit trail (stream VAULT_AUDIT)"),
    "vaultRevoked": ("vault.revoked.{venue}.{account}", ["venue", "account"], "Revocation", "Credentials revoked: holders drop them"),
    "alerts": ("alerts.{severity}.{name}", ["severity", "name"], "Alert", "Alerts an operator must hear about at once: venue bans, auth errors, dead letters, stale feeds, vault denials (core NATS)"),
}

# operation id -> (action from the application's point of view, channel, reply message)
OPERATIONS: dict[str, tuple[str, str, str | None]] = {
    "publishTrades": ("send", "marketTrade", None),
    "publishTickers": ("send", "marketTicker", None),
    "publishBooks": ("send", "marketBook", None),
    "publishBbo": ("send", "marketBbo", None),
    "publishFeedStatus": ("send", "marketStatus", None),
    "receiveOrderCommands": ("receive", "orderSubmit", None),
    "publishOrderEvents": ("send", "orderEvents", None),
    "publishDeadLetters": ("send", "orderDeadLetter", None),
    "answerPrivateQueries": ("receive", "privateQuery", "QueryReply"),
    "answerPublicQueries": ("receive", "publicQuery", "QueryReply"),
    "answerCredentialRequests": ("receive", "vaultCredentials", "VaultReply"),
    "publishAudit": ("send", "vaultAudit", None),
    "publishRevocations": ("send", "vaultRevoked", None),
    "publishAlerts": ("send", "alerts", None),
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """Standalone JSON Schema (draft 2020-12) of every message, by message name."""
    out = {}
    for name, tp in MESSAGES.items():
        schema = msgspec.json.schema(tp)
        out[name] = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": name, **schema}
    return out


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0 document of every exbus subject."""
    names = list(MESSAGES)
    (refs, components) = msgspec.json.schema_components(
        [MESSAGES[n] for n in names], ref_template="#/components/schemas/{name}"
    )
    schemas_ = dict(components)
    for n, ref in zip(names, refs):
        if "$ref" not in ref or ref["$ref"].rsplit("/", 1)[-1] != n:
            schemas_[n] = ref  # unions get a named wrapper
    messages = {
        n: {"name": n, "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{n}"}}
        for n in names
    }
    channels = {
        cid: {
            "address": address,
            "description": desc,
            "messages": {msg: {"$ref": f"#/components/messages/{msg}"}},
            **({"parameters": {p: _P[p] for p in params}} if params else {}),
        }
        for cid, (address, params, msg, desc) in CHANNELS.items()
    }
    operations: dict[str, Any] = {}
    for oid, (action, channel, reply) in OPERATIONS.items():
        op: dict[str, Any] = {"action": action, "channel": {"$ref": f"#/channels/{channel}"}}
        if reply:
            op["reply"] = {"messages": [{"$ref": f"#/components/messages/{reply}"}]}
        operations[oid] = op
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "exbus",
            "version": "0.1.0",
            "description": "Exchange gateway on NATS: normalized market data, order commands and events, queries, key vault. Prices and quantities are decimal strings; times are integer nanoseconds.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas_, "messages": messages},
    }


def clean_descriptions(node: Any) -> Any:
    """Docstring-derived descriptions with their indentation removed, so the output does
    not depend on whether the msgspec (or Python) in use already dedents docstrings."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else clean_descriptions(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [clean_descriptions(v) for v in node]
    return node


def dump(document: dict[str, Any]) -> str:
    return json.dumps(clean_descriptions(document), indent=2, sort_keys=True) + "\n"


def render() -> dict[str, str]:
    """File name -> file content of everything ``export`` writes."""
    files = {f"{name}.schema.json": dump(s) for name, s in json_schemas().items()}
    files["asyncapi.json"] = dump(asyncapi())
    return files


def export(out_dir: Path = GENERATED_DIR) -> list[Path]:
    """Write every schema file into ``out_dir``, removing stale ones; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = render()
    for stale in out_dir.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    paths = []
    for name, content in files.items():
        path = out_dir / name
        path.write_text(content)
        paths.append(path)
    return paths
