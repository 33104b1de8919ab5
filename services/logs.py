"""structlog set-up shared by every service: JSON lines (console on a TTY), with a
processor that redacts anything that looks like a secret before it is rendered."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

REDACTED = "<redacted>"

# Key names (lower-cased, with - and _ removed) that hold secrets. Matches e.g.
# secret, api_key, X-MBX-APIKEY, passphrase, OK-ACCESS-PASSPHRASE, token, Authorization,
# signature, bfx-signature, API-Sign, password, private_key, master_key.
_SECRET_KEY = re.compile(
    r"(secret|apikey|accesskey|passphrase|token|authorization|signature|sign$|password|privatekey|masterkey|seed|nkey|creds)"
)
# Values that carry a credential whatever their key: bearer tokens and JWTs.
_SECRET_VALUE = re.compile(r"(Bearer\s+\S+|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)")


def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (see _SECRET_KEY)."""
    return bool(_SECRET_KEY.search(re.sub(r"[^a-z0-9]", "", key.lower())))


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with secret-named keys and token-looking strings redacted."""
    if _depth > 8:
        return value
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v, _depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, _depth + 1) for v in value)
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    return value


def redact_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor applying :func:`redact` to every field, the message included."""
    return redact(event_dict)


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging) for a service process."""
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and hasattr(stream, "isatty") and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer(colors=False) if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level.upper(), stream=stream, format="%(levelname)s %(name)s %(message)s")
    for chatty in ("websockets", "aiohttp.access"):  # per-connection lines: exbus logs what matters itself
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


def get_logger(name: str, **bound: Any) -> Any:
    """A structlog logger bound to a component name."""
    return structlog.get_logger(component=name, **bound)
