"""One delivery: destination checks, the per-host breaker, what counts as a failure."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.helpers import ensure_tenant, metric_value, scrape
from tests.intelligence_gateway.outbox.conftest import OpenPlatform
from tests.intelligence_gateway.outbox.support import (
    WebhookReceiver,
    breaker_state,
    create_form,
    dispatcher_for,
    outbox_rows,
    submit,
)
from tests.platform.special_addresses import refused_cases
from tests.platform.test_services_client import reserved_port
from xynergy.platform import net_policy
from xynergy.platform.outbox import BREAKER, OutboxDispatcher
from xynergy.platform.runtime import Platform

THRESHOLD = 3


class TestDestinations:
    @pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
    async def test_private_destinations_are_refused_unless_allowed(
        self, platform: Platform, receiver: WebhookReceiver, host: str
    ) -> None:
        url = receiver.url.replace("127.0.0.1", host)
        form_id = await create_form(platform, webhook_url=url)
        await submit(platform, form_id, 1)

        dispatcher = dispatcher_for(platform, outbox_allow_private_addresses=False)
        assert await dispatcher.run_once() == 1

        assert receiver.requests == 0
        [row] = await outbox_rows(platform)
        assert row.delivered_at is None
        assert row.failed_at is None  # the form's URL may still be corrected
        assert row.last_error is not None
        assert ("non-public address" if host == "127.0.0.1" else "special-use name") in (
            row.last_error
        )

    async def test_a_vetted_host_is_connected_to_at_the_checked_address(
        self, platform: Platform, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Pretend loopback is public to exercise the pinned connection: the
        # request goes to the resolved address and keeps the original Host.
        monkeypatch.setattr(net_policy, "is_public_address", lambda address: True)
        monkeypatch.setattr(net_policy, "is_special_use_name", lambda name: False)
        url = receiver.url.replace("127.0.0.1", "localhost")
        form_id = await create_form(platform, webhook_url=url)
        await submit(platform, form_id, 1)

        dispatcher = dispatcher_for(platform, outbox_allow_private_addresses=False)
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
        assert await breaker_state(platform, form_id) == "opened"
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
        assert await breaker_state(platform, form_id) == "closed"
        rows = await outbox_rows(platform)
        assert all((row.last_error or "").startswith("HTTP 404") for row in rows)


async def open_breaker(platform: Platform, dispatcher: OutboxDispatcher, form_id: str) -> None:
    """Deliver until every message of ``form_id`` fails fast on an open breaker (bounded)."""
    for _ in range(THRESHOLD * 20):
        await dispatcher.run_once()
        rows = [row for row in await outbox_rows(platform) if row.source_id == form_id]
        if all("breaker" in (row.last_error or "") for row in rows):
            return
        await asyncio.sleep(0.06)  # past the retry backoff (at most 0.05 s)
    raise AssertionError("the breaker never opened")


class TestBreakerPerTenantAndDestination:
    async def test_one_tenants_dead_port_does_not_hold_back_another_tenant(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        platform = await open_platform(
            breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=30.0
        )
        with reserved_port() as dead:
            dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}/hooks/xynergy"
            alpha_dead = await create_form(platform, webhook_url=dead_url, tenant="alpha")
            await submit(platform, alpha_dead, THRESHOLD)
            dispatcher = dispatcher_for(platform, outbox_concurrency=1)
            await open_breaker(platform, dispatcher, alpha_dead)

            beta = await create_form(platform, webhook_url=receiver.url, tenant="beta")
            alpha_live = await create_form(platform, webhook_url=receiver.url, tenant="alpha")
            [beta_submission] = await submit(platform, beta, 1)
            [alpha_submission] = await submit(platform, alpha_live, 1)
            await dispatcher.run_once()

        # Delivered in the first round after the other breaker opened: nothing waited.
        assert set(receiver.delivered_submissions()) == {beta_submission, alpha_submission}
        assert await breaker_state(platform, alpha_dead) == "opened"
        assert await breaker_state(platform, beta) == "closed"
        assert await breaker_state(platform, alpha_live) == "closed"

    async def test_one_tenant_failing_at_a_shared_host_and_port_does_not_trip_another(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        platform = await open_platform(
            breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=30.0
        )
        alpha = await create_form(platform, webhook_url=receiver.broken_url, tenant="alpha")
        await submit(platform, alpha, THRESHOLD)
        dispatcher = dispatcher_for(platform, outbox_concurrency=1)
        await open_breaker(platform, dispatcher, alpha)

        beta = await create_form(platform, webhook_url=receiver.url, tenant="beta")
        [beta_submission] = await submit(platform, beta, 1)
        await dispatcher.run_once()

        assert receiver.delivered_submissions() == [beta_submission]
        assert receiver.broken_requests == THRESHOLD  # alpha's later rounds failed fast
        assert await breaker_state(platform, beta) == "closed"

    async def test_metrics_never_name_a_webhook_destination(
        self, open_platform: OpenPlatform, receiver: WebhookReceiver
    ) -> None:
        platform = await open_platform(
            breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=30.0
        )
        alpha = await create_form(platform, webhook_url=receiver.broken_url, tenant="alpha")
        beta = await create_form(platform, webhook_url=receiver.url, tenant="beta")
        await submit(platform, alpha, THRESHOLD)
        await submit(platform, beta, 2)
        dispatcher = dispatcher_for(platform, outbox_concurrency=1)
        await open_breaker(platform, dispatcher, alpha)
        await dispatcher.run_once()
        assert len(receiver.delivered) == 2

        text = scrape(platform)
        tenants = [await ensure_tenant(platform, name) for name in ("alpha", "beta")]
        for tenant_chosen in ["127.0.0.1", str(receiver.port), "hooks/", *tenants]:
            assert tenant_chosen not in text
        # The state changes are there, counted under the upstream only.
        transitions = "xynergy_circuit_breaker_destination_transitions_total"
        assert metric_value(text, transitions, circuit=BREAKER, state="opened") == 1
        deliveries = "xynergy_webhook_deliveries_total"
        assert metric_value(text, deliveries, kind="intake-form", outcome="delivered") == 2


class _RefusingSession:
    """Stands in for the webhook session: records any attempt, never connects anywhere."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def post(self, url: object, **kwargs: object) -> object:
        self.targets.append(str(url))
        raise aiohttp.ClientConnectionError("this test never sends")


@pytest.fixture
def attempts(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Targets delivery tried to reach; non-loopback ones are never actually connected to."""
    session = _RefusingSession()
    monkeypatch.setattr(platform.http, "session", lambda upstream: session)
    return session.targets


class TestSpecialPurposeDestinations:
    async def test_names_resolving_into_any_special_purpose_range_are_refused(
        self, platform: Platform, attempts: list[str]
    ) -> None:
        answers: dict[str, str] = {}
        for _label, addresses in refused_cases():
            for address in addresses:
                answers[f"h{len(answers)}.tenant.example"] = address

        async def resolver(host: str, port: int | None) -> list[str]:
            return [answers[host]]

        forms: dict[str, str] = {}
        for host, address in answers.items():
            form_id = await create_form(platform, webhook_url=f"https://{host}/hooks/xynergy")
            forms[form_id] = address
            await submit(platform, form_id, 1)
        dispatcher = dispatcher_for(
            platform, outbox_allow_private_addresses=False, outbox_batch=len(forms)
        )
        dispatcher.resolver = resolver

        assert await dispatcher.run_once() == len(forms)

        assert attempts == []
        rows = await outbox_rows(platform)
        let_through = [
            forms[row.source_id] for row in rows if "non-public" not in (row.last_error or "")
        ]
        assert let_through == []
        assert all(row.delivered_at is None and row.failed_at is None for row in rows)

    async def test_a_resolver_that_never_answers_is_cut_at_the_webhook_timeout(
        self, platform: Platform, attempts: list[str]
    ) -> None:
        never = asyncio.Event()

        async def hanging(host: str, port: int | None) -> list[str]:
            await never.wait()
            return []

        form_id = await create_form(platform, webhook_url="https://slow-dns.tenant.example/h")
        await submit(platform, form_id, 1)
        dispatcher = dispatcher_for(
            platform, outbox_allow_private_addresses=False, outbox_webhook_timeout_seconds=0.2
        )
        dispatcher.resolver = hanging

        # Bounded by the test too: without the timeout this would wait forever.
        assert await asyncio.wait_for(dispatcher.run_once(), timeout=30) == 1

        assert attempts == []
        (row,) = await outbox_rows(platform)
        assert "cannot resolve the host" in (row.last_error or "")
        assert row.delivered_at is None
        assert row.failed_at is None

    @pytest.mark.parametrize(
        "literal", ["64:ff9b::7f00:1", "::ffff:7f00:1", "::127.0.0.1", "2002:7f00:1::1"]
    )
    async def test_ip_literals_embedding_loopback_are_refused(
        self, platform: Platform, attempts: list[str], literal: str
    ) -> None:
        form_id = await create_form(platform, webhook_url=f"https://[{literal}]/hooks/xynergy")
        await submit(platform, form_id, 1)

        assert await dispatcher_for(platform, outbox_allow_private_addresses=False).run_once() == 1

        assert attempts == []
        [row] = await outbox_rows(platform)
        assert "non-public address" in (row.last_error or "")
