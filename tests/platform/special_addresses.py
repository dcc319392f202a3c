"""The IANA special-purpose address registries as test data, apart from the code's own table.

Every block of the IPv4 and IPv6 Special-Purpose Address Registries (sub-blocks
included), multicast, and the IPv6 forms that embed an IPv4 address, each with
sample addresses (first, middle and last of the block, or chosen embeddings). A
destination check must refuse every sample; ``PUBLIC`` holds addresses it must
accept, many of them just outside a special block.
"""

from __future__ import annotations

import ipaddress

__all__ = ["PUBLIC", "SPECIAL_BLOCKS", "samples"]

SPECIAL_BLOCKS: list[str] = [
    # IPv4 Special-Purpose Address Registry
    "0.0.0.0/8",
    "0.0.0.0/32",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.0.0/29",
    "192.0.0.8/32",
    "192.0.0.9/32",
    "192.0.0.10/32",
    "192.0.0.170/32",
    "192.0.0.171/32",
    "192.0.2.0/24",
    "192.31.196.0/24",
    "192.52.193.0/24",
    "192.88.99.0/24",
    "192.88.99.2/32",
    "192.168.0.0/16",
    "192.175.48.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
    "255.255.255.255/32",
    # IPv4 multicast (address space registry)
    "224.0.0.0/4",
    # IPv6 Special-Purpose Address Registry
    "::1/128",
    "::/128",
    "64:ff9b:1::/48",
    "100::/64",
    "100:0:0:1::/64",
    "2001::/23",
    "2001::/32",
    "2001:1::1/128",
    "2001:1::2/128",
    "2001:1::3/128",
    "2001:2::/48",
    "2001:3::/32",
    "2001:4:112::/48",
    "2001:10::/28",
    "2001:20::/28",
    "2001:30::/28",
    "2001:db8::/32",
    "2002::/16",
    "2620:4f:8000::/48",
    "3fff::/20",
    "5f00::/16",
    "fc00::/7",
    "fe80::/10",
    # Deprecated or outside global unicast, and IPv6 multicast
    "::/96",
    "fec0::/10",
    "ff00::/8",
]

# IPv6 forms embedding a private IPv4 address (the blocks ::ffff:0:0/96 and
# 64:ff9b::/96 hold public embeddings too, which stay allowed).
EMBEDDED: dict[str, list[str]] = {
    "::ffff:0:0/96 (IPv4-mapped)": [
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:0.0.0.0",
    ],
    "64:ff9b::/96 (NAT64)": [
        "64:ff9b::127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::10.1.2.3",
        "64:ff9b::169.254.169.254",
        "64:ff9b::192.168.0.1",
        "64:ff9b::100.64.0.1",
    ],
    "64:ff9b:1::/48 (local NAT64)": ["64:ff9b:1::7f00:1", "64:ff9b:1:7f00:0:100::"],
    "::a.b.c.d (IPv4-compatible)": ["::127.0.0.1", "::10.0.0.1", "::169.254.169.254"],
    "2002::/16 (6to4)": ["2002:7f00:1::1", "2002:a00:1::1", "2002:c0a8:101::1"],
    "2001::/32 (Teredo)": ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:a00:1::"],
}

PUBLIC: list[str] = [
    "8.8.8.8",
    "1.1.1.1",
    "9.255.255.255",  # below 10/8
    "11.0.0.1",  # above 10/8
    "100.63.255.255",  # below 100.64/10
    "100.128.0.1",  # above 100.64/10
    "172.15.255.255",
    "172.32.0.1",
    "192.0.1.1",  # between 192.0.0/24 and 192.0.2/24
    "192.169.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.255",  # below multicast
    "2001:4860:4860::8888",
    "2606:4700:4700::1111",
    "2001:200::1",  # just past 2001::/23
    "::ffff:8.8.8.8",  # IPv4-mapped public
    "64:ff9b::8.8.8.8",  # NAT64 of a public address (a DNS64 answer)
]


def samples(block: str) -> list[str]:
    """First, middle and last address of ``block`` (fewer for a tiny block)."""
    network = ipaddress.ip_network(block)
    picks = [network[0], network[network.num_addresses // 2], network[-1]]
    return list(dict.fromkeys(str(address) for address in picks))


def refused_cases() -> list[tuple[str, list[str]]]:
    """(label, addresses) for every special block and every embedding form."""
    return [(block, samples(block)) for block in SPECIAL_BLOCKS] + list(EMBEDDED.items())
