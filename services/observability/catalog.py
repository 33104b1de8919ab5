"""The metrics every exbus service exports: one registry per service, the shared names
(deploy/prometheus rules and the Grafana dashboard use the same ones), and the small
functions the services call where the counted things already happen.

    ingestor  exbus_md_messages_total{venue,channel}         normalized messages published
              exbus_md_feed_lag_seconds{venue}                receipt - venue event time, last frame
              exbus_md_gaps_total{venue}                      books out of sync (gap status)
              exbus_md_resyncs_total{venue}                   books back in sync (resynced status)
              exbus_md_checksum_failures_total{venue}         venue checksums that did not match
              exbus_md_feed_stale{venue}                      1 while a connection is quiet
              exbus_md_feed_up{venue}                         1 while every connection is open
    executor  exbus_commands_total{venue,outcome}             outcome: the command's event status
                                                              (accepted, rejected, filled, canceled,
                                                              failed, ...), dead_letter, deferred
              exbus_command_latency_seconds{venue}            receipt -> first event published
              exbus_ratelimit_budget_used_ratio{venue,limit}  GCRA backlog / burst tolerance, as of the
                                                              scrape (>= 1: the next lease waits)
              exbus_ratelimit_blocks_total{venue}             fleet-wide blocks after a 429/418
    vault     exbus_vault_grants_total{venue}
              exbus_vault_denials_total{reason}               reason: the denial code
    all       exbus_service_info{service,version,instance}    1 per registered replica
              exbus_event_loop_lag_seconds                    how late the event loop runs

Counters count since the process started. Executor replicas of one process share the
executor registry (their sum is the process's work); Prometheus adds up processes.
"""

from __future__ import annotations

import time
import weakref
from typing import Any, Iterable, Sequence

from schemas.market import BBO, BookDelta, BookSnapshot, Ticker, Trade
from services.observability.metrics import Registry

CHANNEL_OF = {Trade: "trade", Ticker: "ticker", BookSnapshot: "book", BookDelta: "book", BBO: "bbo"}
"""Market-data message type -> channel label; anything else published is a ``status``."""


class ServiceMetrics:
    """The registry of one service, with the info gauge every service exports."""

    service = ""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()
        self.info = self.registry.gauge("exbus_service_info", "Running replica of an exbus service.",
                                        ("service", "version", "instance"))
        self.environments: dict[str, str] = {}
        """Venue -> ``live`` / ``testnet`` of the venues this process runs (`exbus status`)."""

    def summary(self) -> dict[str, Any]:
        """The figures `exbus status` shows: ``requests``, ``errors`` and a breakdown."""
        raise NotImplementedError


class IngestorMetrics(ServiceMetrics):
    """Market data: messages per venue/channel, feed lag, gaps, resyncs, checksums, staleness."""

    service = "ingestor"

    def __init__(self, registry: Registry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.messages = r.counter("exbus_md_messages_total", "Normalized market-data messages published.",
                                  ("venue", "channel"))
        self.feed_lag = r.gauge("exbus_md_feed_lag_seconds",
                                "Receipt time minus venue event time of the last message published.", ("venue",))
        self.gaps = r.counter("exbus_md_gaps_total", "Books that lost sync (gap status).", ("venue",))
        self.resyncs = r.counter("exbus_md_resyncs_total", "Books resynced after a gap.", ("venue",))
        self.checksum_failures = r.counter("exbus_md_checksum_failures_total",
                                           "Venue book checksums that did not match.", ("venue",))
        self.stale = r.gauge("exbus_md_feed_stale", "1 while a connection of the feed is quiet.", ("venue",))
        self.feed_up = r.gauge("exbus_md_feed_up", "1 while every connection of the feed is open.", ("venue",))
        self.subscribed: set[str] = set()
        """Venues whose every connection has connected (and subscribed) at least once."""
        self._seen: weakref.WeakKeyDictionary[Any, tuple[int, int, int]] = weakref.WeakKeyDictionary()

    def observe(self, venue: str, feed: Any, published: Sequence[Any], lag: bool = True) -> bool:
        """After a feed's actions were published (the publisher counts the messages in
        ``exbus_md_messages_total``): the feed lag of the last market-data message (not
        with ``lag`` false: a replay's venue times are the recording's), and on a status
        message the feed's integrity counters (FeedStats) and connection state. Returns
        whether ``published`` held a status message."""
        last, status = None, False
        for m in published:
            if type(m) in CHANNEL_OF:
                last = m
            else:
                status = True
        if last is not None and lag:
            self.feed_lag.labels(venue).set((last.ts_recv - last.ts_event) / 1e9)
        if status:
            self._feed_state(venue, feed)
        return status

    def _feed_state(self, venue: str, feed: Any) -> None:
        stats = feed.stats
        now = (stats.gaps, stats.resyncs, stats.checksum_failures)
        before = self._seen.get(feed, (0, 0, 0))
        for family, old, new in zip((self.gaps, self.resyncs, self.checksum_failures), before, now):
            if new > old:
                family.labels(venue).inc(new - old)
        self._seen[feed] = now
        connections = feed.connections
        self.stale.labels(venue).set(any(c.stale for c in connections))
        self.feed_up.labels(venue).set(all(c.ever_connected and c.down_since is None for c in connections))
        if all(c.ever_connected for c in connections):
            self.subscribed.add(venue)

    def feeds_subscribed(self, venues: Iterable[str]) -> bool:
        """True once every one of ``venues`` has subscribed on all its connections."""
        return all(v in self.subscribed for v in venues)

    def summary(self) -> dict[str, Any]:
        r = self.registry
        errors = r.total("exbus_md_gaps_total") + r.total("exbus_md_checksum_failures_total")
        return {"requests": int(r.total("exbus_md_messages_total")), "errors": int(errors),
                "messages": {v: int(n) for v, n in r.by_label("exbus_md_messages_total", "venue").items()},
                "gaps": {v: int(n) for v, n in r.by_label("exbus_md_gaps_total", "venue").items()},
                "stale": sorted(v for v, n in r.by_label("exbus_md_feed_stale", "venue").items() if n),
                "subscribed": sorted(self.subscribed)}


class ExecutorMetrics(ServiceMetrics):
    """Orders: commands by outcome, latency, rate-limit budget use and fleet blocks."""

    service = "executor"
    NOT_ERRORS = frozenset({"accepted", "partially_filled", "filled", "canceled", "expired", "rejected", "deferred"})

    def __init__(self, registry: Registry | None = None) -> None:
        super().__init__(registry)
        r = self.registry
        self.commands = r.counter("exbus_commands_total", "Order commands handled, by outcome.", ("venue", "outcome"))
        self.latency = r.histogram("exbus_command_latency_seconds",
                                   "Command receipt to its first event published.", ("venue",))
        self.budget_used = r.gauge("exbus_ratelimit_budget_used_ratio",
                                   "Rate-limit backlog (GCRA) over the burst tolerance, as of the scrape "
                                   "(>= 1: the next lease waits).", ("venue", "limit"))
        self.blocks = r.counter("exbus_ratelimit_blocks_total", "Fleet-wide blocks after a 429/418.", ("venue",))

    def command(self, venue: str, outcome: str, received: float | None = None) -> None:
        """A command ended in ``outcome``; ``received`` (time.perf_counter() at receipt) adds
        the latency to its first event."""
        self.commands.labels(venue or "unknown", outcome).inc()
        if received is not None:
            self.latency.labels(venue or "unknown").observe(time.perf_counter() - received)

    def lease(self, venue: str, limit: str, tat_ns: int, tolerance_ns: int) -> None:
        """A lease was granted; the limit's GCRA state is now ``tat_ns`` (theoretical arrival
        time, ns since the epoch). The gauge reads the backlog left at scrape time, so it
        drains to 0 when the fleet stops calling."""
        tolerance = max(1, tolerance_ns)
        self.budget_used.labels(venue, limit).set_function(lambda: max(0, tat_ns - time.time_ns()) / tolerance)

    def summary(self) -> dict[str, Any]:
        outcomes = {k: int(v) for k, v in self.registry.by_label("exbus_commands_total", "outcome").items()}
        return {"requests": sum(n for k, n in outcomes.items() if k != "deferred"),
                "errors": sum(n for k, n in outcomes.items() if k not in self.NOT_ERRORS),
                "outcomes": outcomes,
                "ratelimit_blocks": int(self.registry.total("exbus_ratelimit_blocks_total"))}


class VaultMetrics(ServiceMetrics):
    """Credentials: grants per venue, denials per reason."""

    service = "vault"

    def __init__(self, registry: Registry | None = None) -> None:
        super().__init__(registry)
        self.grants = self.registry.counter("exbus_vault_grants_total", "Credential grants.", ("venue",))
        self.denials = self.registry.counter("exbus_vault_denials_total", "Credential denials, by code.", ("reason",))

    def summary(self) -> dict[str, Any]:
        grants = int(self.registry.total("exbus_vault_grants_total"))
        denials = {k: int(v) for k, v in self.registry.by_label("exbus_vault_denials_total", "reason").items()}
        return {"requests": grants + sum(denials.values()), "errors": sum(denials.values()),
                "grants": grants, "denials": denials}


INGESTOR = IngestorMetrics()
EXECUTOR = ExecutorMetrics()
VAULT = VaultMetrics()
SERVICES: dict[str, ServiceMetrics] = {"ingestor": INGESTOR, "executor": EXECUTOR, "vault": VAULT}
"""This process's metrics, by service."""

__all__ = ["EXECUTOR", "INGESTOR", "SERVICES", "VAULT", "ExecutorMetrics", "IngestorMetrics", "ServiceMetrics",
           "VaultMetrics"]
