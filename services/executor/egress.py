"""Start-up check of this executor's egress address against each key's IP allow-list.

Venues that bind a key to registered IPs (Upbit and Korbit always, most others when the
operator chose to) refuse every request from any other address, which shows up as
auth errors on the first order. The vault records the list with the key
(``exbus keys add --allowed-ip``); the first time an executor holds a key, it compares
its own public address with that list and warns, naming venue and account.

The egress address is ``executor.egress_ip`` when configured (a NAT gateway's static
IP), else what ``executor.egress_echo_url`` answers (plain text or JSON ``ip`` /
``origin``, e.g. https://api.ipify.org). The check is skipped, with an info line, where
the address cannot be known (neither is set, the echo fails) or does not matter (a key
without a recorded list; a venue URL on a loopback, private or single-label host: the
simulator).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from schemas.vault import Credentials
from services.executor.credentials import CheckedCredentials, CredentialsProvider
from services.executor.settings import ExecutorSettings
from services.logs import get_logger
from services.vault.allowlist import is_allowed

log = get_logger("egress")

Outcome = Literal["allowed", "not_allowed", "skipped"]


class EgressUnknown(Exception):
    """The egress address cannot be learned (the message says why)."""


def local_venue_url(url: str | None) -> bool:
    """True when ``url`` points at this machine or a private network (the simulator):
    the venue sees no public egress address there."""
    if not url:
        return False
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost") or "." not in host and ":" not in host:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def parse_echo(body: bytes) -> str:
    """The IP address in an echo service's answer: plain text, or JSON with ``ip`` (ipify)
    or ``origin`` (httpbin)."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise EgressUnknown("echo answer is not JSON") from None
        text = str(data.get("ip") or data.get("origin") or "").split(",")[0].strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise EgressUnknown(f"echo answer {text[:60]!r} is not an IP address") from None


class EgressCheck:
    """Compares the egress address with keys' allow-lists; the address is learned once."""

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings
        self._address: str | None = None
        self._lock = asyncio.Lock()

    async def egress_address(self) -> str:
        """This executor's public address (configured, else asked of the echo URL once)."""
        if self.settings.egress_ip:
            try:
                return str(ipaddress.ip_address(self.settings.egress_ip))
            except ValueError:
                raise EgressUnknown("executor.egress_ip is not an IP address") from None
        if not self.settings.egress_echo_url:
            raise EgressUnknown("neither executor.egress_ip nor executor.egress_echo_url is set")
        async with self._lock:
            if self._address is None:
                self._address = await self._ask_echo(self.settings.egress_echo_url)
            return self._address

    async def _ask_echo(self, url: str) -> str:
        timeout = aiohttp.ClientTimeout(total=min(self.settings.request_timeout_s, 10.0))
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
                if response.status != 200:
                    raise EgressUnknown(f"echo URL answered HTTP {response.status}")
                return parse_echo(await response.read())
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise EgressUnknown(f"echo URL unreachable: {type(e).__name__}") from None

    async def check(self, venue: str, account: str, credentials: Credentials) -> Outcome:
        """Compare and log: a warning when the address is not in the key's list."""
        fields = {"venue": venue, "account": account}
        if not credentials.allowed_ips:
            log.info("egress check skipped: the key has no recorded IP allow-list", **fields)
            return "skipped"
        if local_venue_url(self.settings.venue_urls.get(venue)):
            log.info("egress check skipped: the venue URL is local (simulator)", **fields)
            return "skipped"
        try:
            address = await self.egress_address()
        except EgressUnknown as e:
            log.info("egress check skipped: egress address unknown", reason=str(e), **fields)
            return "skipped"
        if is_allowed(address, credentials.allowed_ips):
            log.debug("egress address allowed by the key", egress_ip=address, **fields)
            return "allowed"
        log.warning("egress address is not in the key's IP allow-list: the venue will refuse this key's "
                    "requests from here (allow the address at the venue, then `exbus keys add` with it)",
                    egress_ip=address, allowed_ips=list(credentials.allowed_ips), **fields)
        return "not_allowed"


def with_egress_check(provider: CredentialsProvider, settings: ExecutorSettings) -> CredentialsProvider:
    """``provider`` with the egress check run in the background on each key's first use
    (``executor.egress_check = "warn"``), or unchanged (``"off"``)."""
    if settings.egress_check == "off":
        return provider
    return CheckedCredentials(provider, EgressCheck(settings).check)
