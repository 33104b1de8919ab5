"""Prometheus rules, scrape configs and the Grafana dashboard: every expression is valid
PromQL (parsed by promql-parser) and reads only the brief's shared metric names, the
alerts cover what an operator must be woken for, and the files point at each other."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest
import yaml

from .conftest import ALLOWED_SERIES, BRIEF_METRICS, DEPLOY, series_names

PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "exbus.json"
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$venue": ".*"}


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(promql_parser.parse(expr),
                       lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None)
    return found


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    for name, value in GRAFANA_VARIABLES.items():
        exprs = [e.replace(name, value) for e in exprs]
    return exprs


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: r["alert"])
def test_alert_is_valid_promql_on_shared_metrics(rule: dict[str, Any]) -> None:
    names = {s.name for s in selectors(rule["expr"])}
    assert names and names <= ALLOWED_SERIES
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and "for" in rule


def test_alerts_cover_what_an_operator_must_know() -> None:
    def alerting_on(metric: str, matcher: str = "") -> list[str]:
        return [r["alert"] for r in alert_rules()
                if metric in {s.name for s in selectors(r["expr"])} and matcher in r["expr"]]

    assert alerting_on("exbus_md_feed_stale"), "feed stale"
    assert alerting_on("exbus_md_gaps_total", "rate("), "gaps rate"
    assert alerting_on("exbus_ratelimit_blocks_total"), "rate-limit blocks"
    assert alerting_on("exbus_vault_denials_total"), "vault denials"
    assert alerting_on("exbus_commands_total", "failed"), "command failures"
    assert alerting_on("up", "== 0"), "service down"


def test_invalid_promql_is_caught() -> None:
    with pytest.raises(ValueError):
        selectors("sum(rate(exbus_md_gaps_total[5m])")


def test_dashboard_queries_are_valid_and_show_every_shared_metric() -> None:
    seen = {s.name for expr in dashboard_exprs() for s in selectors(expr)}
    assert seen <= ALLOWED_SERIES
    for metric in BRIEF_METRICS:
        assert seen & series_names(metric), f"{metric} is on no panel"


def test_dashboard_is_provisioned_from_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert variable["current"]["value"] == source["uid"] and source["type"] == "prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "exbus.yml").read_text())
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    mount = f"./deploy/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro"
    assert mount in compose["services"]["grafana"]["volumes"]


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-k8s.yml"])
def test_scrape_configs_load_the_alert_rules(name: str) -> None:
    config = yaml.safe_load((PROMETHEUS / name).read_text())
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS / rule_file).is_file()
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    service_down = next(r for r in alert_rules() if r["alert"] == "ExbusServiceDown")
    job_pattern = re.search(r'job=~"([^"]+)"', service_down["expr"]).group(1)
    if name == "prometheus.yml":
        assert all(re.fullmatch(job_pattern, f"exbus-{s}") for s in ("ingestor", "executor", "vault"))
        assert {f"exbus-{s}" for s in ("ingestor", "executor", "vault")} <= set(jobs)
    else:  # jobs are renamed exbus-<component> from the pod label
        (pods,) = [j for j in config["scrape_configs"] if j["job_name"] == "exbus-pods"]
        assert any(r.get("replacement") == "exbus-$1" and r.get("target_label") == "job" for r in pods["relabel_configs"])
