"""The metrics registry renders the Prometheus text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/): HELP/TYPE lines,
escaped label values, cumulative histogram buckets with +Inf, _sum and _count."""

from __future__ import annotations

import time

import pytest

from services.observability.catalog import ExecutorMetrics
from services.observability.metrics import Registry

from .conftest import Scrape


def test_counter_and_gauge_text_with_escaped_labels() -> None:
    r = Registry()
    c = r.counter("exbus_commands_total", "Order commands handled, by outcome.", ("venue", "outcome"))
    c.labels("binance", "accepted").inc()
    c.labels(venue="binance", outcome="accepted").inc(2)
    g = r.gauge("exbus_md_feed_lag_seconds", "Lag.", ("venue",))
    g.labels('we"ird\\venue\n').set(0.25)
    assert r.exposition() == (
        "# HELP exbus_commands_total Order commands handled, by outcome.\n"
        "# TYPE exbus_commands_total counter\n"
        'exbus_commands_total{venue="binance",outcome="accepted"} 3\n'
        "# HELP exbus_md_feed_lag_seconds Lag.\n"
        "# TYPE exbus_md_feed_lag_seconds gauge\n"
        'exbus_md_feed_lag_seconds{venue="we\\"ird\\\\venue\\n"} 0.25\n'
    )


def test_histogram_buckets_are_cumulative_and_bounds_inclusive() -> None:
    r = Registry()
    h = r.histogram("exbus_command_latency_seconds", "Latency.", ("venue",), buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 3.0):
        h.labels("upbit").observe(v)
    s = Scrape(r.exposition())
    assert s.value("exbus_command_latency_seconds_bucket", venue="upbit", le="0.1") == 2  # 0.1 counts as <= 0.1
    assert s.value("exbus_command_latency_seconds_bucket", venue="upbit", le="1") == 3
    assert s.value("exbus_command_latency_seconds_bucket", venue="upbit", le="+Inf") == 4
    assert s.value("exbus_command_latency_seconds_count", venue="upbit") == 4
    assert s.value("exbus_command_latency_seconds_sum", venue="upbit") == pytest.approx(3.65)


def test_a_name_is_one_metric() -> None:
    r = Registry()
    first = r.counter("exbus_md_gaps_total", "Gaps.", ("venue",))
    assert r.counter("exbus_md_gaps_total", "Gaps.", ("venue",)) is first
    with pytest.raises(ValueError, match="already registered"):
        r.gauge("exbus_md_gaps_total", "Gaps.", ("venue",))
    with pytest.raises(ValueError, match="goes up"):
        first.labels("okx").inc(-1)
    with pytest.raises(ValueError, match="takes labels"):
        first.labels("okx", "extra")


def test_rate_limit_budget_gauge_drains_as_time_passes() -> None:
    """The GCRA backlog left by the last lease is read at scrape time: a burst that ended
    does not keep the gauge high."""
    metrics = ExecutorMetrics(Registry())
    tolerance = 10 * 10**9
    metrics.lease("binance", "weight", time.time_ns() + tolerance // 2, tolerance)
    assert Scrape(metrics.registry.exposition()).value(
        "exbus_ratelimit_budget_used_ratio", venue="binance", limit="weight") == pytest.approx(0.5, abs=0.05)
    metrics.lease("binance", "weight", time.time_ns() - 1, tolerance)  # the backlog has drained
    assert Scrape(metrics.registry.exposition()).value(
        "exbus_ratelimit_budget_used_ratio", venue="binance", limit="weight") == 0
