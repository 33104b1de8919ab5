"""`exbus tail SUBJECT`: decode and pretty-print the messages on a subject pattern."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, TextIO

import msgspec

import schemas
from schemas import subjects
from schemas.market import FeedStatus, MarketData
from schemas.orders import DeadLetter, OrderCommand, OrderEvent
from schemas.queries import Query, QueryReply
from schemas.vault import AuditEvent, CredentialRequest, Revocation, VaultReply
from services.logs import redact

# Which type a message on each kind of subject decodes to.
_TYPES: dict[str, Any] = {
    "md": MarketData,
    "md_status": FeedStatus,
    "orders_submit": OrderCommand,
    "orders_event": OrderEvent,
    "orders_deadletter": DeadLetter,
    "query": Query,
    "public_query": Query,
    "vault_credentials": CredentialRequest,
    "vault_audit": AuditEvent,
    "vault_revoked": Revocation,
}
_REPLY_TYPES = (QueryReply, VaultReply)


def describe(subject: str, data: bytes) -> dict[str, Any]:
    """Decode one message by its subject into a printable dict (secrets redacted).

    Unknown subjects are tried as replies (inbox traffic); what cannot be decoded is
    shown raw with the decode error, so nothing on the subject goes unseen.
    """
    try:
        kind = subjects.parse(subject).kind
        candidates = [_TYPES[kind]]
    except subjects.SubjectError:
        candidates = list(_REPLY_TYPES)
    error = ""
    for tp in candidates:
        try:
            msg = schemas.decode(data, tp)
            return redact(msgspec.to_builtins(msg))
        except msgspec.ValidationError as e:
            error = str(e)
        except msgspec.DecodeError as e:
            error = f"not JSON: {e}"
    return {"undecodable": error or "unknown subject", "raw": data[:512].decode(errors="replace")}


def format_line(subject: str, data: bytes) -> str:
    """One output line: the subject, then the decoded message as compact JSON."""
    return f"{subject} {json.dumps(describe(subject, data), separators=(',', ':'), default=str)}"


async def tail(nc: Any, pattern: str, *, count: int = 0, out: TextIO, stop: asyncio.Event,
               on_line: Callable[[str], None] | None = None) -> int:
    """Print messages on ``pattern`` until ``stop`` is set or ``count`` messages were shown."""
    seen = 0
    done = asyncio.Event()

    async def handler(msg: Any) -> None:
        nonlocal seen
        line = format_line(msg.subject, msg.data)
        print(line, file=out, flush=True)
        if on_line:
            on_line(line)
        seen += 1
        if count and seen >= count:
            done.set()

    sub = await nc.subscribe(pattern, cb=handler)
    await nc.flush()
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(done.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
    await sub.unsubscribe()
    return seen
