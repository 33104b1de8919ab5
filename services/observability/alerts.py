"""Publishing alerts on ``alerts.<severity>.<name>`` (schemas.alerts).

Each service holds one :class:`AlertPublisher`. An alert is logged and published over
core NATS at once; the same ``key`` (a venue, a venue/account, a feed) is published at
most once per ``repeat_after_s``, and the occurrences folded in between are counted in
the next one's ``suppressed``, so a storm of auth errors is one page, not a thousand.
Publishing never raises into the caller: an alert that cannot be sent is logged.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import schemas
from schemas import subjects
from schemas.alerts import Alert
from services.logs import get_logger

log = get_logger("alerts")

DEFAULT_REPEAT_AFTER_S = 60.0


class AlertPublisher:
    """Alerts of one service (``service``: ingestor, executor, vault)."""

    def __init__(self, nc: Any, service: str, *, repeat_after_s: float = DEFAULT_REPEAT_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.nc = nc
        self.service = service
        self.repeat_after_s = repeat_after_s
        self.clock = clock
        self.published = 0
        self._last: dict[tuple[str, str], float] = {}
        self._folded: dict[tuple[str, str], int] = {}

    def _due(self, name: str, key: str) -> tuple[bool, int]:
        """Whether an alert of (name, key) goes out now, and how many were folded before it."""
        now = self.clock()
        last = self._last.get((name, key))
        if last is not None and now - last < self.repeat_after_s:
            self._folded[(name, key)] = self._folded.get((name, key), 0) + 1
            return False, 0
        self._last[(name, key)] = now
        return True, self._folded.pop((name, key), 0)

    async def alert(self, severity: str, name: str, summary: str, *, key: str | None = None,
                    venue: str | None = None, account: str | None = None,
                    details: dict[str, str] | None = None) -> Alert | None:
        """Log and publish one alert; returns it, or None when folded into a recent one."""
        key = key or ".".join(p for p in (venue, account) if p) or name
        due, folded = self._due(name, key)
        if not due:
            return None
        alert = Alert(alert_id=uuid.uuid4().hex, severity=severity, name=name, service=self.service,  # type: ignore[arg-type]
                      key=key, summary=summary[:500], ts=schemas.now_ns(), venue=venue, account=account,  # type: ignore[arg-type]
                      details=dict(details or {}), suppressed=folded)
        (log.error if severity == "critical" else log.warning)(
            "alert", severity=severity, name=name, key=key, summary=alert.summary, suppressed=folded)
        if self.nc is None:
            return alert
        try:
            await self.nc.publish(subjects.alert(severity, name), schemas.encode(alert))
            self.published += 1
        except Exception as e:  # the bus is down: the log line above is the record
            log.error("alert not published", name=name, key=key, error=str(e))
        return alert


__all__ = ["AlertPublisher", "DEFAULT_REPEAT_AFTER_S"]
