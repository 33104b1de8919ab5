"""docker-compose.yml: valid under the published Compose Specification schema (the copy
that check-jsonschema vendors, offline), and a stack that can run: every service of
issue 7, real exbus subcommands and flags, existing files, NATS users that exist."""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from importlib.resources import files
from typing import Any

import jsonschema
import pytest
import yaml

from services.bus.security import COMPOSE_ENV, USERS_CONF, password_variable, read_env_file, write_users
from services.cli import build_parser
from services.config_check import check_file

from .conftest import DEFAULT_PORTS, DEPLOY, ROOT

COMPOSE = ROOT / "docker-compose.yml"
EXBUS_CONF = DEPLOY / "nats" / "exbus.conf"
GENERATED = DEPLOY / "compose" / "secrets"
"""Where the compose stack's NATS credentials are generated (never committed)."""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def nats_users() -> set[str]:
    return set(re.findall(r"^\s*user:\s*(\w+)", EXBUS_CONF.read_text(), re.M))


def test_compose_file_follows_the_compose_specification(compose, compose_validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in compose_validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_a_broken_compose_file(compose, compose_validator) -> None:
    broken = copy.deepcopy(compose)
    broken["services"]["executor"]["deploy"]["replicaz"] = 3
    broken["services"]["nats"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["grafana"]["ports"] = 3000
    paths = {"/".join(map(str, e.absolute_path)) for e in compose_validator.iter_errors(broken)}
    assert {"services/executor/deploy", "services/nats/healthcheck", "services/grafana/ports"} <= paths


def test_stack_runs_every_service_with_several_executors(compose) -> None:
    services = compose["services"]
    assert {"nats", "vault", "ingestor", "executor", "simulator", "prometheus", "grafana"} <= set(services)
    assert services["executor"]["deploy"]["replicas"] >= 2
    nats = services["nats"]
    assert nats["command"][:2] == ["-c", "/etc/nats/single.conf"] and "-sd" in nats["command"]
    assert "./deploy/nats:/etc/nats:ro" in nats["volumes"]
    assert "jetstream" in (DEPLOY / "nats" / "single.conf").read_text()


def exbus_argv(service: dict[str, Any]) -> list[str]:
    """The exbus command line a service runs (from `sh -c "... exbus ..."` too)."""
    command = service["command"]
    if service.get("entrypoint") == ["sh", "-c"]:
        words = shlex.split(command[0])
        return words[words.index("exbus") + 1:]
    return list(command)


def test_exbus_services_run_real_subcommands_and_flags(compose) -> None:
    parser = build_parser()
    exbus_services = {name: s for name, s in compose["services"].items() if s.get("image") == "exbus:latest"}
    assert {"vault", "vault-init", "ingestor", "executor", "simulator"} <= set(exbus_services)
    for name, service in exbus_services.items():
        args = parser.parse_args(exbus_argv(service))  # exits (fails the test) on an unknown flag
        assert args.handler, name


def test_each_service_connects_as_its_own_nats_user(compose, tmp_path) -> None:
    users = nats_users()
    # the server gets the users hashed by `exbus nats-users --out deploy/compose/secrets`
    assert f"./{GENERATED.relative_to(ROOT)}/{USERS_CONF}:/etc/nats/secrets/{USERS_CONF}:ro" \
        in compose["services"]["nats"]["volumes"]
    assert "environment" not in compose["services"]["nats"]  # no password handed to the server
    # each service its own password, from the compose.env the same command writes
    write_users(tmp_path, cost=4)
    written = read_env_file(tmp_path / COMPOSE_ENV)
    for name in ("vault", "ingestor", "executor"):
        env = compose["services"][name]["environment"]
        user = env["EXBUS_NATS_USER"]
        assert user == name and user in users
        variable = password_variable(user)
        assert env["EXBUS_NATS_PASSWORD"] == f"${{{variable}}}" and variable in written


def test_mounted_files_exist(compose, shared_data) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if (ROOT / source).resolve().is_relative_to(GENERATED):
                assert Path(source).name == USERS_CONF  # written by exbus nats-users
            elif source.startswith((".", "/")):
                assert (ROOT / source).resolve().exists(), f"{name}: {source}"


def test_compose_config_passes_config_check() -> None:
    file, issues = check_file(DEPLOY / "compose" / "exbus.toml", env={})
    assert [str(i) for i in issues] == []


def test_prometheus_finds_every_replica_on_the_metrics_ports(compose) -> None:
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    for service, port in DEFAULT_PORTS.items():
        (sd,) = jobs[f"exbus-{service}"]["dns_sd_configs"]
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == port
        assert service in compose["services"] and str(port) in compose["services"][service]["expose"]
