"""The client's address, trusting ``X-Forwarded-For`` only from configured proxies.

Without this rule, any client could set ``X-Forwarded-For`` to a fresh value on
every request and get a fresh rate-limit bucket each time.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import Scope

__all__ = ["client_ip"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_UNKNOWN = "unknown"


def _trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(scope: Scope, trusted_proxies: Sequence[IPNetwork]) -> str:
    """The address of the first untrusted hop, walking ``X-Forwarded-For`` right to left."""
    peer = scope.get("client")
    address = peer[0] if peer else _UNKNOWN
    if not trusted_proxies or not _trusted(address, trusted_proxies):
        return address
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", ())
        if name == b"x-forwarded-for"
    ]
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    # The right-most entries were appended by our own proxies; the first one that
    # is not ours is the client as our edge saw it. Anything left of it is
    # whatever the client chose to send.
    for hop in reversed(hops):
        if not _trusted(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address
        address = hop
    return address
