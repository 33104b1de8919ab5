"""IP allow-lists of venue API keys: the addresses or networks a key was registered with
at the venue, recorded in the vault with the key (``exbus keys add --allowed-ip``) so an
executor can tell at start-up that its egress address is not among them.

Where each venue keeps the list: services/vault/README.md ("IP allow-lists").
"""

from __future__ import annotations

import ipaddress
from typing import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_LIST_REQUIRED: dict[str, str] = {
    "upbit": "Upbit requires allowed IPs on every key issued since 2022-03-18 (docs.upbit.com/kr/docs/api-key)",
    "korbit": "Korbit requires allowed IPs on every API key (docs.korbit.co.kr, API 키)",
}
"""Venues whose keys only work from registered IPs: a key added without its list is
refused unless the operator says it has none (``--no-allowed-ip``)."""


class AllowListError(ValueError):
    """An allow-list entry is neither an IP address nor a CIDR network."""


def parse_allowed_ips(values: Iterable[str]) -> tuple[str, ...]:
    """Normalized, de-duplicated entries from ``--allowed-ip`` values (each may be a comma
    list): ``203.0.113.7``, ``198.51.100.0/24``, ``2001:db8::/32``. A network with host
    bits set (``10.0.0.5/24``) is an error: it is usually a typo for the address."""
    entries: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                entry = str(ipaddress.ip_network(item, strict=True)) if "/" in item else str(ipaddress.ip_address(item))
            except ValueError as e:
                raise AllowListError(f"allowed IP {item!r} is not an IP address or CIDR network ({e})") from None
            if entry not in entries:
                entries.append(entry)
    return tuple(entries)


def networks(allowed_ips: Iterable[str]) -> list[IpNetwork]:
    """The entries as networks (an address is a /32 or /128); unreadable entries are skipped."""
    nets = []
    for entry in allowed_ips:
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    return nets


def is_allowed(address: str, allowed_ips: Iterable[str]) -> bool:
    """True when ``address`` lies in one of the entries (an IPv4-mapped IPv6 address counts
    as its IPv4 address)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks(allowed_ips))
