"""Registering a replica with the NATS services framework (nats-py ``nats.micro``).

Each replica (one NATS connection) is a micro service ``exbus-<service>`` with the
package's version and metadata naming the instance (``<host>:<pid>:<n>``), so the
framework's discovery subjects find it:

    $SRV.PING / $SRV.INFO / $SRV.STATS [.<name>[.<id>]]

It has one endpoint, ``status`` on ``exbus.status.<service>`` (queue group ``q``): any
replica answers with its readiness and metrics summary. The same summary is the
endpoint's ``data`` in STATS, which is what `exbus status` reads. Under deploy/nats
permissions a service user needs subscribe ``$SRV.>`` and ``exbus.status.<service>``
and ``allow_responses``.
"""

from __future__ import annotations

import json
import os
import socket
from importlib import metadata
from typing import Any, Callable

from nats import micro
from nats.micro.request import Request

STATUS_SUBJECT = "exbus.status.{service}"
SERVICE_PREFIX = "exbus-"


def package_version() -> str:
    """The installed exbus version (semantic version, as the framework requires)."""
    try:
        return metadata.version("exbus")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def instance_id(index: int) -> str:
    """``<host>:<pid>:<index>``: which machine (pod), process and replica in it."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}"


async def register(nc: Any, service: str, instance: str, status: Callable[[], dict[str, Any]], *,
                   description: str = "", metadata: dict[str, str] | None = None) -> micro.service.Service:
    """Add this replica to the services framework on ``nc``; ``status()`` gives its
    readiness and metrics summary (JSON-able). Stop it with ``await svc.stop()``."""

    async def answer(request: Request) -> None:
        await request.respond(json.dumps(status()).encode())

    svc = await micro.add_service(
        nc, name=f"{SERVICE_PREFIX}{service}", version=package_version(), description=description or None,
        metadata={"instance": instance, "host": socket.gethostname(), "pid": str(os.getpid()), **(metadata or {})},
        stats_handler=lambda _endpoint: status(),
    )
    await svc.add_endpoint(name="status", subject=STATUS_SUBJECT.format(service=service), handler=answer)
    return svc


__all__ = ["STATUS_SUBJECT", "instance_id", "package_version", "register"]
