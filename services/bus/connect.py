"""Connecting to NATS with the settings of the config file (URL, credentials, TLS).

A service keeps trying to reach its servers until they answer or it is told to stop;
a one-shot command gives up after ``nats.connect_timeout_s`` with NatsUnreachable.
Either way a stop signal (services.bus.lifecycle.run_until_signal) ends the attempt at
once: nats-py's own connect loop never gives up with ``max_reconnect_attempts=-1``.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import ssl
import weakref
from typing import Any

from nats.aio.client import Client as NATS

from services.config import NatsSettings
from services.errors import CommandError
from services.logs import get_logger

log = get_logger("bus")


class NatsUnreachable(CommandError):
    """A one-shot command could not connect to NATS in time (the message names the
    servers, without credentials, and the last error)."""


class StoppedWhileConnecting(asyncio.CancelledError):
    """The stop event was set before the connection was made. A cancellation: what was
    starting up ends as cancelled, not failed, and no ``except Exception`` retries it."""


_stop: contextvars.ContextVar[asyncio.Event | None] = contextvars.ContextVar("exbus_stop", default=None)


def abort_connecting_on(stop: asyncio.Event) -> None:
    """Make every connect() of this context (and of tasks it creates) give up as soon as
    ``stop`` is set, raising StoppedWhileConnecting."""
    _stop.set(stop)


class BusClient(NATS):
    """nats-py's client, with a drain that always ends the connection: a connection
    that is away (reconnecting) or still connecting has nothing to drain and is closed;
    a closed one is left as it is. So every service can drain on its way out, whatever
    state the bus is in."""

    async def drain(self) -> None:
        if self.is_closed:
            return
        if self.is_connecting or self.is_reconnecting:
            await self.close()
            return
        await super().drain()


_clients: "weakref.WeakSet[BusClient]" = weakref.WeakSet()
"""Every client connect() made in this process (for close_clients)."""


async def close_clients(*, only_away: bool = False) -> int:
    """Close the open clients of this process (``only_away``: those whose server is away,
    reconnecting), so that whatever still waits on them fails at once instead of timing
    out. Used on stop; returns how many were closed."""
    closing = [c for c in list(_clients) if not c.is_closed and (c.is_reconnecting or not only_away)]
    for client in closing:
        try:
            await client.close()
        except Exception as e:  # already going down
            log.debug("close on stop", error=str(e))
    return len(closing)


def shown_servers(servers: list[str]) -> str:
    """Server URLs for a message: userinfo (user:password@) removed."""
    return ", ".join(re.sub(r"://[^/@]*@", "://", s) for s in servers)


def tls_context(settings: NatsSettings) -> ssl.SSLContext | None:
    """An SSL context when any TLS option is set, else None."""
    if not (settings.tls_ca or settings.tls_cert):
        return None
    ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    return ctx


async def connect(settings: NatsSettings, *, url: str | None = None, name: str | None = None,
                  one_shot: bool = False, stop: asyncio.Event | None = None, **options: Any) -> NATS:
    """Connect, then reconnect forever; ``url`` overrides ``settings.url``.

    Until the first connection: a service (default) keeps trying; ``one_shot`` gives up
    after ``settings.connect_timeout_s`` with NatsUnreachable, without logging each
    attempt. ``stop`` (default: the one of abort_connecting_on) ends the attempt early
    with StoppedWhileConnecting.
    """
    servers = [u.strip() for u in (url or settings.url).split(",") if u.strip()]
    if not servers:
        raise CommandError("no NATS URL: set nats.url / NATS_URL, or use the embedded server")
    client_name = name or settings.name
    last_error: list[Exception] = []

    async def on_error(e: Exception) -> None:
        last_error[:] = [e]
        if one_shot and not client.is_connected and not client.is_reconnecting:
            return  # still the first attempts: the command reports the outcome once
        log.warning("nats error", client=client_name, error=str(e))

    client = BusClient()

    async def on_disconnect() -> None:
        if client.is_closed or client.is_draining:
            return  # our own drain/close, not a fault
        log.warning("nats disconnected", client=client_name)

    async def on_reconnect() -> None:
        log.info("nats reconnected", client=client_name)

    kwargs: dict[str, Any] = dict(
        servers=servers, name=client_name, connect_timeout=settings.connect_timeout_s,
        max_reconnect_attempts=-1, reconnect_time_wait=0.5, allow_reconnect=True,
        ping_interval=settings.ping_interval_s, max_outstanding_pings=2,
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
    stop = stop or _stop.get()
    log.debug("connecting to nats", client=client_name, servers=shown_servers(servers), one_shot=one_shot)
    attempt = asyncio.ensure_future(client.connect(**kwargs))
    stopping = asyncio.ensure_future(stop.wait()) if stop is not None else None
    try:
        done, _ = await asyncio.wait([t for t in (attempt, stopping) if t is not None],
                                     timeout=settings.connect_timeout_s if one_shot else None,
                                     return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        await _abandon(client, attempt)
        raise
    finally:
        if stopping is not None:
            stopping.cancel()
    if attempt in done:
        attempt.result()  # raises what the attempt raised
        _clients.add(client)
        url_now = client.connected_url.geturl() if client.connected_url else ""
        log.debug("nats connected", client=client_name, server=shown_servers([url_now]))
        return client
    await _abandon(client, attempt)
    if stop is not None and stop.is_set():
        raise StoppedWhileConnecting(f"stopped while connecting to {shown_servers(servers)}")
    why = f": {last_error[0]}" if last_error else ""
    raise NatsUnreachable(f"cannot connect to NATS at {shown_servers(servers)} "
                          f"within {settings.connect_timeout_s:g} s{why}")


async def _abandon(client: NATS, attempt: asyncio.Future[Any]) -> None:
    """Cancel a connection attempt and release what it opened."""
    while not attempt.done():
        # again until it ends: asyncio.wait_for inside nats-py's connect can swallow a
        # cancellation that lands as a refused connection completes (Python < 3.12)
        attempt.cancel()
        await asyncio.wait([attempt], timeout=0.1)
    if not attempt.cancelled():
        attempt.exception()  # retrieved: the attempt's own error is not the news here
    try:
        await client.close()
    except Exception as e:  # nothing was open
        log.debug("close after abandoned connect", error=str(e))
