"""Alerts that reach someone: deploy/alertmanager/alertmanager.yml routes the Prometheus
rules by severity to `exbus alert-relay`, which the compose file and the k8s manifests
run; Prometheus points at Alertmanager in both.

The config is checked with Alertmanager's own `amtool check-config` where amtool is on
PATH (Debian's prometheus-alertmanager package has it), and always against a JSON
Schema of the Alertmanager configuration fields exbus uses (strict: an unknown or
misspelt field fails, as it does in Alertmanager) plus the references a schema cannot
check: every route's receiver exists, matchers parse, every severity of the rules has
a route."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from .conftest import DEPLOY, yaml_documents

ALERTMANAGER_YML = DEPLOY / "alertmanager" / "alertmanager.yml"

_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
_MATCHERS = {"type": "array", "items": {"type": "string"}}
_ROUTE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "receiver": {"type": "string"},
        "group_by": {"type": "array", "items": {"type": "string"}},
        "continue": {"type": "boolean"},
        "matchers": _MATCHERS,
        "group_wait": _DURATION,
        "group_interval": _DURATION,
        "repeat_interval": _DURATION,
        "mute_time_intervals": {"type": "array", "items": {"type": "string"}},
        "active_time_intervals": {"type": "array", "items": {"type": "string"}},
        "routes": {"type": "array", "items": {"$ref": "#/$defs/route"}},
    },
}
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"route": _ROUTE},
    "type": "object",
    "additionalProperties": False,
    "required": ["route", "receivers"],
    "properties": {
        "global": {"type": "object", "additionalProperties": False,
                   "properties": {"resolve_timeout": _DURATION, "http_config": {"type": "object"}}},
        "route": {"$ref": "#/$defs/route", "required": ["receiver"]},
        "inhibit_rules": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"source_matchers": _MATCHERS, "target_matchers": _MATCHERS,
                           "equal": {"type": "array", "items": {"type": "string"}}}}},
        "receivers": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False, "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "webhook_configs": {"type": "array", "items": {
                    "type": "object", "additionalProperties": False, "required": ["url"],
                    "properties": {"url": {"type": "string", "format": "uri", "pattern": "^https?://"},
                                   "send_resolved": {"type": "boolean"},
                                   "max_alerts": {"type": "integer", "minimum": 0},
                                   "http_config": {"type": "object"}}}},
            }}},
        "templates": {"type": "array", "items": {"type": "string"}},
    },
}
MATCHER = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*(=|!=|=~|!~)"[^"]*"$')


def config() -> dict[str, Any]:
    return yaml.safe_load(ALERTMANAGER_YML.read_text())


def routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route, *(r for child in route.get("routes", []) for r in routes(child))]


def severities_of_rules() -> set[str]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]
    return {rule["labels"]["severity"] for g in groups for rule in g["rules"]}


def check(cfg: dict[str, Any]) -> None:
    """Raise on a config Alertmanager would refuse (schema) or one that routes nowhere."""
    jsonschema.validate(cfg, SCHEMA)
    names = [r["name"] for r in cfg["receivers"]]
    assert len(names) == len(set(names)), f"duplicate receivers: {names}"
    for r in routes(cfg["route"]):
        assert r.get("receiver", cfg["route"]["receiver"]) in names, r
        for m in r.get("matchers", []):
            assert MATCHER.match(m), f"matcher {m!r} does not parse"
    for rule in cfg.get("inhibit_rules", []):
        for m in rule.get("source_matchers", []) + rule.get("target_matchers", []):
            assert MATCHER.match(m), f"matcher {m!r} does not parse"


def test_alertmanager_config_is_valid() -> None:
    check(config())
    amtool = shutil.which("amtool")
    if amtool:  # Alertmanager's own checker, where it is installed
        done = subprocess.run([amtool, "check-config", str(ALERTMANAGER_YML)], capture_output=True, text=True)
        assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("mistake", ["misspelt field", "unknown receiver", "bad matcher", "bad duration"])
def test_the_checks_catch_a_broken_config(mistake: str) -> None:
    cfg = config()
    if mistake == "misspelt field":
        cfg["route"]["group_wiat"] = cfg["route"].pop("group_wait")
    elif mistake == "unknown receiver":
        cfg["route"]["routes"][0]["receiver"] = "nobody"
    elif mistake == "bad matcher":
        cfg["route"]["routes"][0]["matchers"] = ["severity=critical"]  # the value must be quoted
    else:
        cfg["route"]["repeat_interval"] = "30 minutes"
    with pytest.raises((AssertionError, jsonschema.ValidationError)):
        check(cfg)


def test_every_severity_of_the_rules_is_routed_to_the_relay() -> None:
    cfg = config()
    receivers = {r["name"]: r for r in cfg["receivers"]}
    routed = {}
    for r in cfg["route"]["routes"]:
        (m,) = r["matchers"]
        severity = re.fullmatch(r'severity="(\w+)"', m).group(1)  # type: ignore[union-attr]
        routed[severity] = receivers[r["receiver"]]
    assert severities_of_rules() <= set(routed)
    for severity, receiver in routed.items():
        (hook,) = receiver["webhook_configs"]
        url = urlparse(hook["url"])
        assert (url.hostname, url.port, url.path) == ("alert-relay", 9095, f"/{severity}")


def test_prometheus_sends_to_alertmanager() -> None:
    for name in ("prometheus.yml", "prometheus-k8s.yml"):
        cfg = yaml.safe_load((DEPLOY / "prometheus" / name).read_text())
        (am,) = cfg["alerting"]["alertmanagers"]
        assert am["static_configs"][0]["targets"] == ["alertmanager:9093"], name


def test_compose_runs_alertmanager_and_the_relay() -> None:
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())["services"]
    am = compose["alertmanager"]
    assert any(v.startswith("./deploy/alertmanager:") for v in am["volumes"])
    relay = compose["alert-relay"]
    assert relay["command"][-3:] == ["alert-relay", "--port", "9095"]
    assert relay["environment"]["EXBUS_NATS_USER"] == "alerts"
    assert "alertmanager" in compose["prometheus"]["depends_on"]


def test_k8s_alertmanager_config_is_the_deploy_file() -> None:
    docs = yaml_documents(DEPLOY / "k8s" / "alerting.yaml")
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert yaml.safe_load(cm["data"]["alertmanager.yml"]) == config()
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert {"alertmanager", "alert-relay"} <= set(services)  # the hosts the configs name
    assert services["alert-relay"]["spec"]["ports"][0]["port"] == 9095


def test_nats_user_alerts_may_publish_alerts_only() -> None:
    text = (DEPLOY / "nats" / "exbus.conf").read_text()
    block = text[text.index("user: alerts"):]
    block = block[:block.index("}\n    }")]
    assert 'publish: { allow: ["alerts.>"] }' in block
    assert Path(DEPLOY / "nats" / "exbus.conf").read_text().count("alerts.>") >= 5  # services publish, strategies read
