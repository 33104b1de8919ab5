"""Audit trail of the vault: every grant, denial and change is an AuditEvent on stream
VAULT_AUDIT, published with JetStream and acknowledged before the operation counts.
Entries go only by the stream's age limit (``streams.vault_audit_max_age_s``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from nats.js import JetStreamContext

from schemas import decode, encode
from schemas.subjects import VAULT_AUDIT
from schemas.vault import AuditEvent
from services.bus.streams import VAULT_AUDIT as VAULT_AUDIT_STREAM


_NO_MESSAGE_FOUND = 10037


class AuditUnavailable(Exception):
    """The audit event was not stored; the operation it records must not take effect."""


def audit_event(action: str, actor: str, outcome: str, **fields: Any) -> AuditEvent:
    """A new AuditEvent with a fresh id and the current time."""
    return AuditEvent(event_id=uuid.uuid4().hex, action=action, actor=actor, outcome=outcome,  # type: ignore[arg-type]
                      ts=time.time_ns(), **fields)


async def record(js: JetStreamContext, event: AuditEvent, *, timeout_s: float = 2.0) -> None:
    """Store ``event`` in stream VAULT_AUDIT, waiting for the server's ack (Nats-Msg-Id =
    event id, so a retried publish is stored once); AuditUnavailable if it is not stored."""
    try:
        ack = await js.publish(VAULT_AUDIT, encode(event), timeout=timeout_s,
                               stream=VAULT_AUDIT_STREAM, headers={"Nats-Msg-Id": event.event_id})
    except Exception as e:  # any failure means no durable audit record
        raise AuditUnavailable(f"audit event not stored: {type(e).__name__}: {e}") from None
    if ack.stream != VAULT_AUDIT_STREAM:
        raise AuditUnavailable(f"audit event stored in {ack.stream!r}, not {VAULT_AUDIT_STREAM}")


def decode_audit(data: bytes) -> AuditEvent:
    """An AuditEvent from its wire form."""
    return decode(data, AuditEvent)


async def entries_older_than(nc: Any, max_age_s: float, *, now_ns: int | None = None) -> int:
    """How many audit entries are older than ``max_age_s`` (what the stream's age limit
    drops once it is ``max_age_s``); 0 for no limit."""
    if max_age_s <= 0:
        return 0
    state = (await nc.jetstream().stream_info(VAULT_AUDIT_STREAM)).state
    if not state.messages:
        return 0
    cutoff_ns = (time.time_ns() if now_ns is None else now_ns) - int(max_age_s * 1e9)
    start = datetime.fromtimestamp(cutoff_ns / 1e9, timezone.utc).isoformat().replace("+00:00", "Z")
    reply = await nc.request(f"$JS.API.STREAM.MSG.GET.{VAULT_AUDIT_STREAM}",
                              json.dumps({"start_time": start}).encode(), timeout=5.0)
    found = json.loads(reply.data)
    if "message" in found:  # the first entry at or after the cutoff
        return max(0, int(found["message"]["seq"]) - state.first_seq)
    if found.get("error", {}).get("err_code") == _NO_MESSAGE_FOUND:
        return state.messages
    raise AuditUnavailable(f"audit stream cannot be read: {found.get('error')}")


async def apply_age_limit(js: JetStreamContext, max_age_s: float) -> bool:
    """Give stream VAULT_AUDIT the age limit ``max_age_s`` (the server then drops older
    entries at once); False when it already has it. The stream refuses deletes and purges,
    so its age limit is the only way audit entries go."""
    info = await js.stream_info(VAULT_AUDIT_STREAM)
    config = info.config
    if (config.max_age or 0.0) == max_age_s:
        return False
    config.max_age = max_age_s
    if max_age_s and (config.duplicate_window or 0.0) > max_age_s:
        config.duplicate_window = max_age_s  # the server refuses a window longer than the age
    await js.update_stream(config)
    return True
