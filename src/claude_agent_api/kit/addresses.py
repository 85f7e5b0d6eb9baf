"""The client's address: the TCP peer, or ``X-Forwarded-For`` when (and only when) the peer is a trusted proxy.

With trusted proxies configured, the forwarded chain is walked from the right (the entry our proxy appended) and
the first address that is not itself a trusted proxy is the client. A spoofed left-most entry therefore never
wins, and a request that does not come through a trusted proxy is judged by its peer address alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None, networks: Sequence[Network]) -> bool:
    return addr is not None and any(addr in net for net in networks)


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    peer = peer or "unknown"
    if not trusted or not forwarded_for or not _trusted(_parse(peer), trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            return peer  # a malformed chain is not trusted
        if not _trusted(addr, trusted):
            return str(addr)
    return str(_parse(hops[0])) if hops else peer
