"""One delivery: destination checks, the per-host breaker, what counts as a failure."""

from __future__ import annotations

import asyncio

import pytest

from tests.intelligence_gateway.outbox.conftest import OpenPlatform
from tests.intelligence_gateway.outbox.support import (
    WebhookReceiver,
    create_form,
    fast_intake,
    outbox_rows,
    submit,
)
from xynergy.intelligence_gateway.outbox import delivery
from xynergy.intelligence_gateway.outbox.delivery import is_public_address
from xynergy.intelligence_gateway.outbox.dispatcher import OutboxDispatcher
from xynergy.platform.runtime import Platform

THRESHOLD = 3


def dispatcher_for(platform: Platform, **intake: object) -> OutboxDispatcher:
    return OutboxDispatcher(
        settings=platform.settings, intake=fast_intake(**intake), platform=platform
    )


class TestIsPublicAddress:
    @pytest.mark.parametrize(
        "address",
        [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",  # noqa: S104 - an address under test, nothing binds to it
            "224.0.0.1",
            "::1",
            "fe80::1%eth0",
            "fd00::1",
            "::ffff:127.0.0.1",
        ],
    )
    def test_refuses_non_public_addresses(self, address: str) -> None:
        assert not is_public_address(address)

    @pytest.mark.parametrize("address", ["8.8.8.8", "2001:4860:4860::8888"])
    def test_accepts_public_addresses(self, address: str) -> None:
        assert is_public_address(address)


class TestDestinations:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_private_destinations_are_refused_unless_allowed(
        self, platform: Platform, receiver: WebhookReceiver, host: str
    ) -> None:
        url = receiver.url.replace("127.0.0.1", host)
        form_id = await create_form(platform, webhook_url=url)
        await submit(platform, form_id, 1)

        dispatcher = dispatcher_for(platform, webhook_allow_private_addresses=False)
        assert await dispatcher.run_once() == 1

        assert receiver.requests == 0
        [row] = await outbox_rows(platform)
        assert row.delivered_at is None
        assert row.failed_at is None  # the form's URL may still be corrected
        assert row.last_error is not None
        assert "non-public address" in row.last_error

    async def test_a_vetted_host_is_connected_to_at_the_checked_address(
        self, platform: Platform, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Pretend loopback is public to exercise the pinned connection: the
        # request goes to the resolved address and keeps the original Host.
        monkeypatch.setattr(delivery, "is_public_address", lambda address: True)
        url = receiver.url.replace("127.0.0.1", "localhost")
        form_id = await create_form(platform, webhook_url=url)
        await submit(platform, form_id, 1)

        dispatcher = dispatcher_for(platform, webhook_allow_private_addresses=False)
        assert await dispatcher.run_once() == 1

        assert len(receiver.delivered) == 1
        assert receiver.hosts == [f"localhost:{receiver.port}"]

    async def test_redirects_are_not_followed(
        self, platform: Platform, receiver: WebhookReceiver
    ) -> None:
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 1)
        receiver.status = 307

        assert await dispatcher_for(platform).run_once() == 1
        [row] = await outbox_rows(platform)
        assert row.delivered_at is None
        assert row.last_error is not None
        assert row.last_error.startswith("HTTP 307")
        assert receiver.requests == 1


class TestBreaker:
    async def test_opens_after_repeated_failures_and_stops_calling_the_host(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        platform = await open_platform(
            breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=30.0
        )
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, 6)
        receiver.status = 503
        dispatcher = dispatcher_for(platform, outbox_concurrency=1)

        for _ in range(3):
            await dispatcher.run_once()
            await asyncio.sleep(0.06)

        assert receiver.requests == THRESHOLD
        assert await platform.breakers.state("webhook:127.0.0.1") == "opened"
        rows = await outbox_rows(platform)
        assert all(row.delivered_at is None and row.failed_at is None for row in rows)
        # Later rounds find the breaker open and reschedule without calling.
        assert all("breaker" in (row.last_error or "") for row in rows)

    async def test_client_errors_do_not_open_it(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        platform = await open_platform(
            breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=30.0
        )
        form_id = await create_form(platform, webhook_url=receiver.url)
        await submit(platform, form_id, THRESHOLD * 2)
        receiver.status = 404

        await dispatcher_for(platform, outbox_concurrency=1).run_once()

        assert receiver.requests == THRESHOLD * 2
        assert await platform.breakers.state("webhook:127.0.0.1") == "closed"
        rows = await outbox_rows(platform)
        assert all((row.last_error or "").startswith("HTTP 404") for row in rows)
