"""The ``[observability]`` section of the config file: each service's metrics/health port.

    [observability]
    enabled = true
    host = "0.0.0.0"      # probes and Prometheus reach the pod's address
    ingestor_port = 9101  # 0: a free port (printed by `exbus up`)
    executor_port = 9102
    vault_port = 9103
"""

from __future__ import annotations

import msgspec


class ObservabilitySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """HTTP endpoints (/metrics, /healthz, /readyz) and NATS service registration."""

    enabled: bool = True
    """Serve the HTTP endpoints and register with the NATS services framework."""
    host: str = "0.0.0.0"
    """Listen address of the HTTP endpoints (metrics carry no secrets)."""
    ingestor_port: int = 9101
    executor_port: int = 9102
    vault_port: int = 9103

    def port(self, service: str) -> int:
        """The configured port of ``service`` (ingestor, executor, vault); 0: a free one."""
        return int(getattr(self, f"{service}_port"))


__all__ = ["ObservabilitySettings"]
