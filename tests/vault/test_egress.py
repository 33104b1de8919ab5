"""The executor's start-up egress check (issue 16 item 2): its public address against the
IP allow-list recorded with each key; a warning naming venue and account on a mismatch,
silence on a match, an info line where the address cannot be known or does not matter.
The echo-URL variant asks a local aiohttp server standing in for an IP echo service."""

from __future__ import annotations

import io
import json
from typing import AsyncIterator, Callable, Iterator

import pytest
from aiohttp import web

from schemas.vault import Credentials
from services.executor.credentials import CheckedCredentials, StaticCredentials
from services.executor.egress import EgressCheck, local_venue_url, parse_echo, with_egress_check
from services.executor.settings import ExecutorSettings
from services.logs import configure_logging
from services.vault import admin
from tests.local_http import serve_http
from tests.vault.conftest import VaultUnderTest

ALLOWED = ("203.0.113.7", "198.51.100.0/24")
KEY = Credentials(api_key="egress-key", secret="egress-secret-41", allowed_ips=ALLOWED)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict]]]:
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    configure_logging("info", "json")


@pytest.fixture
async def echo() -> AsyncIterator[Callable[[bytes, int], str]]:
    """A local echo service; ``echo(body, status)`` sets its answer and returns its URL."""
    answer = {"body": b"", "status": 200, "hits": 0}

    async def handle(request: web.Request) -> web.Response:
        answer["hits"] += 1
        return web.Response(body=answer["body"], status=answer["status"])

    async with serve_http([("GET", "/ip", handle)]) as url:
        def set_answer(body: bytes, status: int = 200) -> str:
            answer.update(body=body, status=status)
            return f"{url}/ip"

        set_answer.hits = lambda: answer["hits"]  # type: ignore[attr-defined]
        yield set_answer


def _warnings(lines: list[dict]) -> list[dict]:
    return [line for line in lines if line.get("level") == "warning"]


async def test_echo_url_mismatch_warns_naming_venue_and_account(echo, logs) -> None:
    check = EgressCheck(ExecutorSettings(egress_echo_url=echo(b"192.0.2.44\n")))
    assert await check.check("upbit", "main", KEY) == "not_allowed"
    (warning,) = _warnings(logs())
    assert warning["venue"] == "upbit" and warning["account"] == "main"
    assert warning["egress_ip"] == "192.0.2.44" and warning["allowed_ips"] == list(ALLOWED)
    assert "not in the key's IP allow-list" in warning["event"]
    assert KEY.secret not in json.dumps(logs()) and KEY.api_key not in json.dumps(logs())


async def test_echo_url_match_is_silent_and_asked_once(echo, logs) -> None:
    check = EgressCheck(ExecutorSettings(egress_echo_url=echo(b'{"ip": "198.51.100.23"}')))
    assert await check.check("upbit", "main", KEY) == "allowed"
    assert await check.check("upbit", "second", KEY) == "allowed"
    assert _warnings(logs()) == [] and [line for line in logs() if line["level"] == "info"] == []
    assert echo.hits() == 1  # the address is learned once per process


async def test_configured_egress_ip_needs_no_echo(logs) -> None:
    assert await EgressCheck(ExecutorSettings(egress_ip="203.0.113.7")).check("okx", "main", KEY) == "allowed"
    assert await EgressCheck(ExecutorSettings(egress_ip="203.0.113.8")).check("okx", "main", KEY) == "not_allowed"
    assert [w["venue"] for w in _warnings(logs())] == ["okx"]


@pytest.mark.parametrize("settings, creds, why", [
    (ExecutorSettings(), KEY, "egress address unknown"),  # nothing configured
    (ExecutorSettings(egress_ip="192.0.2.1"), Credentials(api_key="k", secret="s"), "no recorded IP allow-list"),
    (ExecutorSettings(egress_ip="192.0.2.1", venue_urls={"upbit": "http://127.0.0.1:8080"}), KEY, "local"),
    (ExecutorSettings(egress_ip="192.0.2.1", venue_urls={"upbit": "http://simulator:8080"}), KEY, "local"),
])
async def test_skipped_with_an_info_line_where_the_address_cannot_be_known_or_does_not_matter(
        settings: ExecutorSettings, creds: Credentials, why: str, logs) -> None:
    assert await EgressCheck(settings).check("upbit", "main", creds) == "skipped"
    assert _warnings(logs()) == []
    (info,) = [line for line in logs() if line["level"] == "info"]
    assert why in info["event"] + info.get("reason", "") and info["venue"] == "upbit"


@pytest.mark.parametrize("body, status", [(b"not an address", 200), (b"", 503)])
async def test_a_failing_echo_skips_the_check(body: bytes, status: int, echo, logs) -> None:
    check = EgressCheck(ExecutorSettings(egress_echo_url=echo(body, status)))
    assert await check.check("upbit", "main", KEY) == "skipped"
    assert _warnings(logs()) == []


async def test_first_use_of_a_vault_key_runs_the_check(vault: VaultUnderTest, echo, logs) -> None:
    """Through the executor's provider chain: vault grant -> CheckedCredentials -> check,
    in the background, once per key until its allow-list changes."""
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", KEY)
    client = vault.client()
    provider = with_egress_check(client, ExecutorSettings(egress_echo_url=echo(b"192.0.2.99")))
    assert isinstance(provider, CheckedCredentials)
    assert (await provider.get("binance", "main")).allowed_ips == ALLOWED
    await provider.get("binance", "main")
    assert await provider.checked() == ["not_allowed"]
    assert [(w["venue"], w["account"]) for w in _warnings(logs())] == [("binance", "main")]

    replaced = Credentials(api_key="egress-key-2", secret="egress-secret-42", allowed_ips=("192.0.2.99",))
    await admin.add_credentials(vault.nc, vault.store, vault.ring, "binance", "main", replaced)  # revokes the lease
    await client.revoked.wait()
    assert (await provider.get("binance", "main")).allowed_ips == ("192.0.2.99",)
    assert await provider.checked() == ["allowed"]
    assert len(_warnings(logs())) == 1
    await client.close()


def test_off_leaves_the_provider_alone_and_helpers_parse() -> None:
    static = StaticCredentials({})
    assert with_egress_check(static, ExecutorSettings(egress_check="off")) is static
    assert parse_echo(b'{"origin": "198.51.100.1, 10.0.0.1"}') == "198.51.100.1"
    assert local_venue_url("http://localhost:9000") and local_venue_url("http://10.1.2.3")
    assert not local_venue_url("https://api.upbit.com") and not local_venue_url(None)


def test_config_check_names_bad_egress_and_retention_settings() -> None:
    from services.config_check import check_raw

    issues = {i.key: i.message for i in check_raw({
        "executor": {"egress_check": "block", "egress_ip": "203.0.113.300", "egress_echo_url": "ftp://echo"},
        "vault": {"retain_versions": 0, "retain_version_age_s": -1, "purge_interval_s": -5},
    })}
    assert "not one of off, warn" in issues["executor.egress_check"]
    assert "not an IP address" in issues["executor.egress_ip"]
    assert "scheme must be one of http, https" in issues["executor.egress_echo_url"]
    assert set(issues) >= {"vault.retain_versions", "vault.retain_version_age_s", "vault.purge_interval_s"}
    assert check_raw({"executor": {"egress_ip": "2001:db8::7", "egress_echo_url": "https://api.ipify.org"},
                      "vault": {"retain_versions": 1}}) == []
