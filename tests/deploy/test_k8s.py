"""deploy/k8s: every manifest valid under the published Kubernetes JSON schemas (strict:
unknown fields fail; the schemas kubernetes-validate ships, offline), and a deployment
that hangs together: probes on the services' metrics ports, Secrets and ConfigMap that
the pods reference, a config that passes `exbus config check`, real exbus subcommands,
NATS from the official Helm chart as a 3-node JetStream cluster with exbus.conf's users."""

from __future__ import annotations

import copy
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.cli import build_parser
from services.config import Config
from services.config_check import check_raw

from .conftest import DEFAULT_PORTS, DEPLOY, yaml_documents

K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.33.0"
NOT_MANIFESTS = {"kustomization.yaml", "nats-values.yaml"}
MANIFEST_FILES = sorted(p for p in K8S.glob("*.yaml") if p.name not in NOT_MANIFESTS)
DOCS = [(p.name, doc) for p in MANIFEST_FILES for doc in yaml_documents(p)]


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in DOCS if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("name,doc", DOCS, ids=[f"{n}:{d['kind']}/{d['metadata']['name']}" for n, d in DOCS])
def test_manifest_follows_the_kubernetes_schema(name: str, doc: dict[str, Any]) -> None:
    assert kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_schema_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(objects("Deployment")["exbus-executor"])
    container(deployment)["readinesProbe"] = container(deployment).pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in MANIFEST_FILES]


def test_deployments_hpa_and_services() -> None:
    deployments = objects("Deployment")
    assert set(deployments) == {"exbus-ingestor", "exbus-vault", "exbus-executor", "exbus-alert-relay", "alertmanager"}
    (hpa,) = objects("HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "exbus-executor"}
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployments["exbus-executor"]["spec"]  # the HPA owns the count
    assert deployments["exbus-ingestor"]["spec"]["replicas"] == 2  # sharing the feeds through KV leases
    services = objects("Service")
    for service in DEFAULT_PORTS:
        selector = services[f"exbus-{service}-metrics"]["spec"]["selector"]
        labels = deployments[f"exbus-{service}"]["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


@pytest.mark.parametrize("service", sorted(DEFAULT_PORTS))
def test_probes_and_metrics_on_the_configured_port(service: str) -> None:
    port = Config().observability.port(service)
    assert port == DEFAULT_PORTS[service]
    deployment = objects("Deployment")[f"exbus-{service}"]
    c = container(deployment)
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert c["ports"] == [{"name": "metrics", "containerPort": port, "protocol": "TCP"}]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    (metrics_port,) = objects("Service")[f"exbus-{service}-metrics"]["spec"]["ports"]
    assert metrics_port["port"] == port and metrics_port["targetPort"] == "metrics"


def test_pods_run_real_exbus_commands_as_their_nats_user() -> None:
    parser = build_parser()
    users = set(re.findall(r"^\s*user:\s*(\w+)", (DEPLOY / "nats" / "exbus.conf").read_text(), re.M))
    for name, deployment in objects("Deployment").items():
        c = container(deployment)
        if not c["image"].startswith("exbus:"):
            continue  # Alertmanager
        assert parser.parse_args(c["args"]).handler
        env = {e["name"]: e for e in c["env"]}
        assert env["EXBUS_NATS_USER"]["value"] in users
        assert env["EXBUS_CONFIG"]["value"].startswith("/etc/exbus/")
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def secret_keys() -> dict[str, set[str]]:
    return {name: set(s.get("stringData", {})) | set(s.get("data", {})) for name, s in objects("Secret").items()}


def test_referenced_secrets_and_config_exist() -> None:
    secrets = secret_keys()
    assert {"exbus-nats-users", "exbus-vault-master-key", "exbus-executor-identity"} <= set(secrets)
    configmaps = objects("ConfigMap")
    for name, deployment in objects("Deployment").items():
        for e in container(deployment).get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in secrets[ref["name"]], f"{name}: {ref}"
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps
    vault_env = {e["name"] for e in container(objects("Deployment")["exbus-vault"])["env"]}
    assert Config().vault.master_key_env in vault_env


def test_configmap_config_passes_check_and_runs_streams_at_three_replicas() -> None:
    raw = tomllib.loads(objects("ConfigMap")["exbus-config"]["data"]["exbus.toml"])
    assert [str(i) for i in check_raw(raw)] == []
    assert raw["streams"]["replicas"] == 3


def test_nats_helm_values_cluster_with_exbus_users_and_tls() -> None:
    values = yaml.safe_load((K8S / "nats-values.yaml").read_text())
    config = values["config"]
    assert config["cluster"]["enabled"] is True and config["cluster"]["replicas"] == 3
    assert config["jetstream"]["enabled"] is True and config["jetstream"]["fileStore"]["pvc"]["enabled"] is True
    secrets = secret_keys()
    # the users: nats-users.conf of `exbus nats-users` (hashes), from Secret exbus-nats-auth
    # mounted into the NATS container and included relative to /etc/nats-config/nats.conf
    (volume,) = [p["value"] for p in values["podTemplate"]["patch"] if p["path"] == "/spec/volumes/-"]
    (mount,) = [p["value"] for p in values["container"]["patch"] if p["path"] == "/volumeMounts/-"]
    assert mount["name"] == volume["name"] and volume["secret"]["secretName"] == "exbus-nats-auth"
    included = Path(os.path.normpath(Path("/etc/nats-config") / config["merge"]["$include"]))
    assert included.parent == Path(mount["mountPath"]) and included.name in secrets["exbus-nats-auth"]
    assert "env" not in values["container"]  # no password handed to the NATS pods
    # TLS on client connections and routes, verified against the CA both ways; no route password
    assert values["tlsCA"]["enabled"] is True and values["tlsCA"]["key"] in secrets[values["tlsCA"]["secretName"]]
    for block in (config["nats"]["tls"], config["cluster"]["tls"]):
        assert block["enabled"] is True and block["merge"]["verify"] is True
        assert {"tls.crt", "tls.key"} <= secrets[block["secretName"]]
    assert "authorization" not in config["cluster"].get("merge", {})


def test_exbus_pods_connect_over_tls_with_a_client_certificate() -> None:
    raw = tomllib.loads(objects("ConfigMap")["exbus-config"]["data"]["exbus.toml"])
    nats = raw["nats"]
    assert nats["url"].startswith("tls://")
    files = {Path(nats[k]) for k in ("tls_ca", "tls_cert", "tls_key")}
    (directory,) = {f.parent for f in files}
    exbus_pods = {n: d for n, d in objects("Deployment").items() if container(d)["image"].startswith("exbus:")}
    assert {"exbus-vault", "exbus-ingestor", "exbus-executor"} <= set(exbus_pods)
    for name, deployment in exbus_pods.items():
        spec = deployment["spec"]["template"]["spec"]
        (mount,) = [m for m in container(deployment)["volumeMounts"] if Path(m["mountPath"]) == directory]
        (volume,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
        assert volume["secret"]["secretName"] == "exbus-nats-client-tls", name
        assert {f.name for f in files} <= secret_keys()["exbus-nats-client-tls"], name
