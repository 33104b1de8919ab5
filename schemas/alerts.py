"""Alerts on the bus: ``alerts.<severity>.<name>``.

The events an operator must hear about at once (a venue ban, an ``auth_error``, a dead
letter, a stale feed, a vault denial) are published here by the service that sees them,
so a strategy or a pager bridge can subscribe without Prometheus. The Prometheus rules in
``deploy/prometheus/alerts.yml`` cover the same ground from metrics, through Alertmanager.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

import msgspec
from msgspec import Meta

from schemas.common import Nanos, Venue

Severity = Literal["critical", "warning", "info"]
"""As the ``severity`` label of the Prometheus rules."""

SEVERITIES: tuple[str, ...] = get_args(Severity)

AlertName = Literal["venue_banned", "auth_error", "dead_letter", "feed_stale", "vault_denial", "prometheus"]
"""What happened; one subject token each. ``prometheus``: a rule of deploy/prometheus/alerts.yml,
relayed from Alertmanager by ``exbus alert-relay`` (``details["alertname"]`` names it)."""

ALERT_NAMES: tuple[str, ...] = get_args(AlertName)


class Alert(msgspec.Struct, frozen=True, tag_field="type", tag="alert", kw_only=True):
    """One alert. ``alert_id`` is unique per occurrence; ``key`` names what it is about
    (the same key again is the same trouble continuing: a pager groups by it), and
    ``suppressed`` counts the occurrences of that key folded into this one since the last
    alert was published."""

    alert_id: str
    severity: Severity
    name: AlertName
    service: str
    key: str
    summary: Annotated[str, Meta(max_length=500)]
    ts: Nanos
    venue: Venue | None = None
    account: str | None = None
    details: dict[str, str] = {}
    suppressed: int = 0


__all__ = ["ALERT_NAMES", "SEVERITIES", "Alert", "AlertName", "Severity"]
