"""Audit trail of the vault: every grant, denial and change is an AuditEvent on stream
VAULT_AUDIT, published with JetStream and acknowledged before the operation counts."""

from __future__ import annotations

import time
import uuid
from typing import Any

from nats.js import JetStreamContext

from schemas import decode, encode
from schemas.subjects import VAULT_AUDIT
from schemas.vault import AuditEvent
from services.bus.streams import VAULT_AUDIT as VAULT_AUDIT_STREAM


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
