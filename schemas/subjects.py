"""Every NATS subject exbus uses is built and parsed here, nowhere else.

    md.<venue>.<channel>.<symbol>                 market data (core NATS; optional capture MD)
    md.<venue>.status                             feed health
    orders.submit.<venue>.<account>               order commands (stream ORDERS, work queue)
    orders.events.<venue>.<account>.<client_id>   order events (stream ORDER_EVENTS)
    orders.deadletter.<venue>.<account>           undecodable commands (stream ORDERS_DEADLETTER)
    venue.<venue>.<account>.<query>               private queries (request/reply)
    venue.<venue>.public.<query>                  public queries (request/reply)
    vault.credentials.get                         credential requests (request/reply)
    vault.audit                                   audit events (stream VAULT_AUDIT)
    vault.revoked.<venue>.<account>               revocations
    alerts.<severity>.<name>                      alerts (bans, auth errors, dead letters, stale feeds, vault denials)
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec

from schemas.alerts import ALERT_NAMES, SEVERITIES
from schemas.common import VENUES
from schemas.market import CHANNELS
from schemas.queries import PRIVATE_QUERIES, PUBLIC_QUERIES

VAULT_CREDENTIALS_GET = "vault.credentials.get"
VAULT_AUDIT = "vault.audit"
VAULT_REVOKED_ALL = "vault.revoked.>"
MD_ALL = "md.>"
ORDERS_SUBMIT_ALL = "orders.submit.>"
ORDERS_EVENTS_ALL = "orders.events.>"
ORDERS_DEADLETTER_ALL = "orders.deadletter.>"
ALERTS_ALL = "alerts.>"

_SYMBOL = re.compile(r"^[A-Z0-9]{1,16}-[A-Z0-9]{1,16}$")
_ACCOUNT = re.compile(r"^[a-z0-9_-]{1,32}$")
_CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


class SubjectError(ValueError):
    """A subject, or a token for one, does not follow the grammar above."""


def _check(kind: str, value: str, ok: bool) -> str:
    if not ok:
        raise SubjectError(f"invalid {kind} {value!r} for a subject")
    return value


def _venue(v: str) -> str:
    return _check("venue", v, v in VENUES)


def _symbol(s: str) -> str:
    return _check("symbol", s, bool(_SYMBOL.match(s)))


def _account(a: str) -> str:
    return _check("account", a, a != "public" and bool(_ACCOUNT.match(a)))


def md(venue: str, channel: str, symbol: str) -> str:
    """``md.<venue>.<channel>.<symbol>``."""
    return f"md.{_venue(venue)}.{_check('channel', channel, channel in CHANNELS)}.{_symbol(symbol)}"


def md_of(venue: str = "*", channel: str = "*", symbol: str = "*") -> str:
    """Wildcard for market data (``*`` for any venue, channel or symbol)."""
    v = venue if venue == "*" else _venue(venue)
    c = channel if channel == "*" else _check("channel", channel, channel in CHANNELS)
    s = symbol if symbol == "*" else _symbol(symbol)
    return f"md.{v}.{c}.{s}"


def md_status(venue: str) -> str:
    """``md.<venue>.status``."""
    return f"md.{_venue(venue)}.status"


def orders_submit(venue: str, account: str) -> str:
    """``orders.submit.<venue>.<account>``."""
    return f"orders.submit.{_venue(venue)}.{_account(account)}"


def orders_event(venue: str, account: str, client_order_id: str) -> str:
    """``orders.events.<venue>.<account>.<client_order_id>``."""
    coid = _check("client order id", client_order_id, bool(_CLIENT_ORDER_ID.match(client_order_id)))
    return f"orders.events.{_venue(venue)}.{_account(account)}.{coid}"


def orders_events_of(venue: str = "*", account: str = "*") -> str:
    """Wildcard for the events of one venue/account (``*`` for any)."""
    v = venue if venue == "*" else _venue(venue)
    a = account if account == "*" else _account(account)
    return f"orders.events.{v}.{a}.*"


def orders_deadletter(venue: str, account: str) -> str:
    """``orders.deadletter.<venue>.<account>``; tokens that are not valid are kept as ``unknown``."""
    v = venue if venue in VENUES else "unknown"
    a = account if _ACCOUNT.match(account) else "unknown"
    return f"orders.deadletter.{v}.{a}"


def query(venue: str, account: str, name: str) -> str:
    """``venue.<venue>.<account>.<query>`` for the account's private queries."""
    return f"venue.{_venue(venue)}.{_account(account)}.{_check('query', name, name in PRIVATE_QUERIES)}"


def public_query(venue: str, name: str) -> str:
    """``venue.<venue>.public.<query>`` for ticker and orderbook."""
    return f"venue.{_venue(venue)}.public.{_check('query', name, name in PUBLIC_QUERIES)}"


def vault_revoked(venue: str, account: str) -> str:
    """``vault.revoked.<venue>.<account>``."""
    return f"vault.revoked.{_venue(venue)}.{_account(account)}"


def alert(severity: str, name: str) -> str:
    """``alerts.<severity>.<name>``."""
    return f"alerts.{_check('severity', severity, severity in SEVERITIES)}.{_check('alert name', name, name in ALERT_NAMES)}"


def alerts_of(severity: str = "*") -> str:
    """Wildcard for the alerts of one severity (``*`` for any)."""
    s = severity if severity == "*" else _check("severity", severity, severity in SEVERITIES)
    return f"alerts.{s}.*"


SubjectKind = Literal[
    "md", "md_status", "orders_submit", "orders_event", "orders_deadletter",
    "query", "public_query", "vault_credentials", "vault_audit", "vault_revoked", "alert",
]


class Subject(msgspec.Struct, frozen=True):
    """A parsed exbus subject; fields a kind does not have are None."""

    kind: SubjectKind
    venue: str | None = None
    account: str | None = None
    channel: str | None = None
    symbol: str | None = None
    client_order_id: str | None = None
    query: str | None = None
    severity: str | None = None
    name: str | None = None


def parse(subject: str) -> Subject:
    """Parse any exbus subject; raises SubjectError for anything else."""
    t = subject.split(".")
    n = len(t)
    try:
        if t[0] == "md":
            if n == 3 and t[2] == "status":
                return Subject("md_status", venue=_venue(t[1]))
            if n == 4 and t[2] in CHANNELS:
                return Subject("md", venue=_venue(t[1]), channel=t[2], symbol=_symbol(t[3]))
        elif t[0] == "orders" and n >= 4:
            if t[1] == "submit" and n == 4:
                return Subject("orders_submit", venue=_venue(t[2]), account=_account(t[3]))
            if t[1] == "events" and n == 5:
                orders_event(t[2], t[3], t[4])
                return Subject("orders_event", venue=t[2], account=t[3], client_order_id=t[4])
            if t[1] == "deadletter" and n == 4:
                return Subject("orders_deadletter", venue=t[2], account=t[3])
        elif t[0] == "venue" and n == 4:
            if t[2] == "public":
                public_query(t[1], t[3])
                return Subject("public_query", venue=t[1], query=t[3])
            query(t[1], t[2], t[3])
            return Subject("query", venue=t[1], account=t[2], query=t[3])
        elif t[0] == "vault":
            if subject == VAULT_CREDENTIALS_GET:
                return Subject("vault_credentials")
            if subject == VAULT_AUDIT:
                return Subject("vault_audit")
            if n == 4 and t[1] == "revoked":
                return Subject("vault_revoked", venue=_venue(t[2]), account=_account(t[3]))
        elif t[0] == "alerts" and n == 3:
            alert(t[1], t[2])
            return Subject("alert", severity=t[1], name=t[2])
    except SubjectError as e:
        raise SubjectError(f"{subject!r}: {e}") from None
    raise SubjectError(f"{subject!r} is not an exbus subject")
