"""The network policy for user-supplied destinations: every special-purpose range refused."""

from __future__ import annotations

import pytest

from tests.platform.special_addresses import PUBLIC, refused_cases
from xynergy.platform.net_policy import (
    DestinationRefused,
    Resolver,
    is_public_address,
    is_public_host,
    resolve_public,
)

CASES = refused_cases()
IDS = [label for label, _ in CASES]


def resolving_to(*addresses: str) -> Resolver:
    async def resolve(host: str, port: int | None) -> list[str]:
        return list(addresses)

    return resolve


class TestIsPublicAddress:
    @pytest.mark.parametrize(("block", "addresses"), CASES, ids=IDS)
    def test_refuses_every_special_purpose_address(self, block: str, addresses: list[str]) -> None:
        assert [a for a in addresses if is_public_address(a)] == []

    @pytest.mark.parametrize("address", PUBLIC)
    def test_accepts_ordinary_global_unicast(self, address: str) -> None:
        assert is_public_address(address)

    def test_a_zone_id_is_ignored(self) -> None:
        assert not is_public_address("fe80::1%eth0")


class TestIsPublicHost:
    @pytest.mark.parametrize(
        "host",
        ["localhost", "LOCALHOST.", "api.localhost", "printer.local", "intranet", "x.internal"],
    )
    def test_refuses_local_names(self, host: str) -> None:
        assert not is_public_host(host)

    @pytest.mark.parametrize("host", ["127.1", "0x7f.1", "2130706433", "[::1]", "10.0.0.1"])
    def test_reads_addresses_written_as_names(self, host: str) -> None:
        assert not is_public_host(host)

    def test_accepts_a_public_name(self) -> None:
        assert is_public_host("hooks.acme.example")


class TestResolvePublic:
    @pytest.mark.parametrize(("block", "addresses"), CASES, ids=IDS)
    async def test_refuses_a_name_resolving_into_a_special_range(
        self, block: str, addresses: list[str]
    ) -> None:
        for address in addresses:
            with pytest.raises(DestinationRefused, match="non-public"):
                await resolve_public("hooks.acme.example", 443, resolver=resolving_to(address))

    async def test_one_private_answer_among_public_ones_refuses(self) -> None:
        resolver = resolving_to("8.8.8.8", "64:ff9b::7f00:1")
        with pytest.raises(DestinationRefused):
            await resolve_public("hooks.acme.example", 443, resolver=resolver)

    async def test_answers_the_first_address_when_all_are_public(self) -> None:
        resolver = resolving_to("64:ff9b::8.8.8.8", "8.8.4.4")
        assert await resolve_public("hooks.acme.example", 443, resolver=resolver) == (
            "64:ff9b::8.8.8.8"
        )

    async def test_no_address_refuses(self) -> None:
        with pytest.raises(DestinationRefused, match="no address"):
            await resolve_public("hooks.acme.example", 443, resolver=resolving_to())

    @pytest.mark.parametrize("literal", ["64:ff9b::7f00:1", "::ffff:127.0.0.1", "::127.0.0.1"])
    async def test_the_system_resolver_refuses_embedded_literals(self, literal: str) -> None:
        with pytest.raises(DestinationRefused):
            await resolve_public(literal, 443)

    async def test_a_local_name_is_refused_before_resolving(self) -> None:
        called: list[str] = []

        async def resolver(host: str, port: int | None) -> list[str]:
            called.append(host)
            return ["8.8.8.8"]

        with pytest.raises(DestinationRefused, match="special-use"):
            await resolve_public("printer.local", 443, resolver=resolver)
        assert called == []
