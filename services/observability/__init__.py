"""Observability of every exbus service: Prometheus metrics, liveness and readiness over
HTTP, and registration with the NATS services framework for `exbus status`.

Modules:
- ``metrics``: a small registry (counters, gauges, histograms) and the text format;
- ``catalog``: the shared metric names, one registry per service, the hooks services call;
- ``http``: /metrics, /healthz, /readyz on the service's metrics port;
- ``micro``: a replica as an ``exbus-<service>`` micro service ($SRV.PING/INFO/STATS);
- ``runtime``: ``Observability(service, settings)``, both of the above for one service;
- ``status``: `exbus status`;
- ``settings``: the ``[observability]`` config section.
"""
