"""Which network destinations a user-supplied URL may reach (server-side request forgery).

Every outbound call to a URL a tenant chose (webhooks today) asks this module
twice: when the URL is stored (:func:`is_public_host` on what the URL says) and
when it is called (:func:`resolve_public` on what the name resolves to *now*,
then connecting to that vetted address).

An address is public only if it is ordinary global unicast:

* IPv4: outside every block of the IANA IPv4 Special-Purpose Address Registry
  (private, loopback, link-local, shared, documentation, benchmarking, AS112,
  AMT, the deprecated 6to4 relay, "this network", reserved, broadcast) and
  outside multicast (224.0.0.0/4).
* IPv6: inside 2000::/3 (the only block IANA allocates for global unicast, which
  leaves out ::/8 with loopback, unspecified and IPv4-compatible addresses,
  100::/8 discard, ULA, link-local, site-local and multicast) and outside every
  block of the IANA IPv6 Special-Purpose Address Registry inside it (the whole of
  2001::/23 with Teredo, documentation, 6to4, AS112, ORCHID, ...).
* IPv6 forms whose meaning *is* an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``
  and NAT64 ``64:ff9b::a.b.c.d``) are judged by that IPv4 address, so a DNS64
  resolver's answer for a public host still passes while ``64:ff9b::7f00:1``
  (loopback behind the translator) does not. The local-use NAT64 prefix
  ``64:ff9b:1::/48`` is refused whatever it embeds: it is a site's own network.

Special-purpose blocks marked "globally reachable" by IANA (AS112, AMT, TURN
anycast, ...) are refused too: they hold infrastructure, never a webhook receiver.
Host names under special-use or private suffixes (``localhost``, ``.local``,
``.internal``, ...) and single-label names are refused before resolving.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable

__all__ = [
    "SPECIAL_PURPOSE_V4",
    "SPECIAL_PURPOSE_V6",
    "DestinationRefused",
    "Resolver",
    "is_public_address",
    "is_public_host",
    "is_special_use_name",
    "resolve_public",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int | None], Awaitable[list[str]]]

# IANA IPv4 Special-Purpose Address Registry (sub-blocks fall inside these), plus
# multicast from the IPv4 address space registry.
SPECIAL_PURPOSE_V4: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local (cloud metadata services live here)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (DS-Lite, PCP/TURN anycast, NAT64 discovery)
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.31.196.0/24",  # AS112-v4
        "192.52.193.0/24",  # AMT
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # direct delegation AS112 service
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # limited broadcast
    )
)

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")

# IANA IPv6 Special-Purpose Address Registry. Blocks outside 2000::/3 are refused by
# the rule above already; they are listed so the table is the registry.
SPECIAL_PURPOSE_V6: tuple[ipaddress.IPv6Network, ...] = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "::1/128",  # loopback
        "::/128",  # unspecified
        "::/96",  # deprecated IPv4-compatible addresses
        "::ffff:0:0/96",  # IPv4-mapped (judged by the IPv4 address)
        "64:ff9b::/96",  # NAT64 well-known prefix (judged by the IPv4 address)
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation
        "100::/64",  # discard-only
        "100:0:0:1::/64",  # dummy prefix
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, AMT, AS112, ORCHID...
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "2620:4f:8000::/48",  # direct delegation AS112 service
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing (SRv6) SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)

# Special-use names (RFC 6761, 6762, 8375) and common private suffixes: never a
# public receiver, whatever a resolver says today.
_SPECIAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
_SPECIAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".home.arpa", ".lan")


class DestinationRefused(ValueError):
    """The destination is not a public address; nothing was sent."""


def _address(address: str | IPAddress) -> IPAddress:
    if isinstance(address, str):
        return ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        return ipaddress.IPv6Address(int(address))
    return address


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    return not any(ip in block for block in SPECIAL_PURPOSE_V4)


def is_public_address(address: str | IPAddress) -> bool:
    """Whether ``address`` (an IP address, as text or object) is ordinary global unicast.

    Raises:
        ValueError: ``address`` is text that is not an IP address.
    """
    ip = _address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if ip in _IPV4_MAPPED or ip in _NAT64_WELL_KNOWN:
        return _is_public_v4(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return ip in _GLOBAL_UNICAST_V6 and not any(ip in block for block in SPECIAL_PURPOSE_V6)


def is_special_use_name(name: str) -> bool:
    """Whether host name ``name`` is local by definition (single label, ``localhost``, ``.local``...)."""
    host = name.rstrip(".").lower()
    return (
        "." not in host
        or host in _SPECIAL_NAMES
        or any(host.endswith(suffix) for suffix in _SPECIAL_SUFFIXES)
    )


def is_public_host(host: str | IPAddress) -> bool:
    """Whether a URL's host may be a public receiver: an address by the rules above,
    or a name that is not special-use (what it resolves to is checked when calling)."""
    if not isinstance(host, str):
        return is_public_address(host)
    text = host.strip("[]")
    try:
        return is_public_address(text)
    except ValueError:
        pass
    try:
        # Resolvers read "127.1", "0x7f.1" and "2130706433" as IPv4 addresses.
        return is_public_address(ipaddress.IPv4Address(socket.inet_aton(text)))
    except OSError:
        return not is_special_use_name(text)


async def system_resolver(host: str, port: int | None) -> list[str]:
    """Every address the system resolver gives for ``host`` (TCP), in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


async def resolve_public(host: str, port: int | None, *, resolver: Resolver | None = None) -> str:
    """One address of ``host`` to connect to, once every address it resolves to is public.

    Connecting to the returned address (not to the name again) leaves no window
    for DNS rebinding between this check and the connection.

    Raises:
        DestinationRefused: the host has no address, or one of them is not public.
        OSError: the name could not be resolved (may work later).
    """
    if is_special_use_name(host) and not _is_address(host):
        raise DestinationRefused(f"the host is a special-use name ({host})")
    addresses = await (resolver or system_resolver)(host, port)
    if not addresses:
        raise DestinationRefused("the host has no address")
    for address in addresses:
        if not is_public_address(address):
            raise DestinationRefused(f"the host resolves to a non-public address ({address})")
    return addresses[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True
