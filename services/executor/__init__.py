"""The order executor: replicas consuming ORDERS, exactly one venue order per command,
rate-limit leases shared by the fleet, order events, and queries over request/reply."""
