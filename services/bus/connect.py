"""Connecting to NATS with the settings of the config file (URL, credentials, TLS)."""

from __future__ import annotations

import ssl
from typing import Any

import nats
from nats.aio.client import Client as NATS

from services.config import NatsSettings
from services.logs import get_logger

log = get_logger("bus")


def tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """An SSL context when any TLS option is set, else None."""
    if not (settings.tls_ca or settings.tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    return ctx


async def connect(settings: NatsSettings, *, url: str | None = None, name: str | None = None, **options: Any) -> NATS:
    """Connect with reconnection forever; ``url`` overrides ``settings.url``."""
    servers = [u.strip() for u in (url or settings.url).split(",") if u.strip()]
    if not servers:
        raise ValueError("no NATS URL: set nats.url / NATS_URL, or use the embedded server")
    client_name = name or settings.name

    async def on_error(e: Exception) -> None:
        log.warning("nats error", client=client_name, error=str(e))

    client: NATS | None = None

    async def on_disconnect() -> None:
        if client is not None and (client.is_closed or client.is_draining):
            return  # our own drain/close, not a fault
        log.warning("nats disconnected", client=client_name)

    async def on_reconnect() -> None:
        log.info("nats reconnected", client=client_name)

    kwargs: dict[str, Any] = dict(
        servers=servers, name=client_name, connect_timeout=settings.connect_timeout_s,
        max_reconnect_attempts=-1, reconnect_time_wait=0.5, allow_reconnect=True,
        error_cb=on_error, disconnected_cb=on_disconnect, reconnected_cb=on_reconnect,
    )
    if settings.creds_file:
        kwargs["user_credentials"] = settings.creds_file
    if settings.user:
        kwargs["user"], kwargs["password"] = settings.user, settings.password
        kwargs["inbox_prefix"] = f"_INBOX.{settings.user}"  # deploy/nats: each user reads only its own inbox
    ctx = tls_context(settings)
    if ctx is not None:
        kwargs["tls"] = ctx
        # tls:// URLs: TLS from the first byte, nothing in plaintext (the deploy configs'
        # tls.handshake_first); nats:// upgrades after the server's INFO
        kwargs["tls_handshake_first"] = all(s.startswith("tls://") for s in servers)
    kwargs.update(options)
    client = await nats.connect(**kwargs)
    return client
