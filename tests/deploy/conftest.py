"""Shared paths and contracts for the deploy/ tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

BRIEF_METRICS = frozenset({
    "exbus_md_messages_total", "exbus_md_feed_lag_seconds", "exbus_md_gaps_total",
    "exbus_md_resyncs_total", "exbus_md_checksum_failures_total", "exbus_md_feed_stale",
    "exbus_commands_total", "exbus_command_latency_seconds", "exbus_ratelimit_budget_used_ratio",
    "exbus_ratelimit_blocks_total", "exbus_vault_grants_total", "exbus_vault_denials_total",
    "exbus_service_info",
})
"""The shared metric names of the team brief: services, alerts and dashboards agree on them."""

HISTOGRAMS = frozenset({"exbus_command_latency_seconds"})

DEFAULT_PORTS = {"ingestor": 9101, "executor": 9102, "vault": 9103}
"""Metrics/health ports of the brief ([observability] <service>_port defaults)."""


def yaml_documents(path: Path) -> list[Any]:
    """Every non-empty YAML document of a file."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def series_names(metric: str) -> set[str]:
    """Names a metric may be queried by: itself, or a histogram's _bucket/_sum/_count."""
    if metric in HISTOGRAMS:
        return {f"{metric}_bucket", f"{metric}_sum", f"{metric}_count"}
    return {metric}


ALLOWED_SERIES = frozenset(name for m in BRIEF_METRICS for name in series_names(m)) | {"up"}
"""What alert and dashboard expressions may read: the brief's metrics and Prometheus' `up`."""
