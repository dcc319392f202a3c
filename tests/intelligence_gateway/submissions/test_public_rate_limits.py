"""Per-IP and per-form limits of the public intake: shared through Redis, not spoofable."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import client_for
from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.config import Settings

PER_IP = IntakeSettings(rate_per_ip="3/minute", rate_per_form="1000/minute")
PER_FORM = IntakeSettings(rate_per_ip="1000/minute", rate_per_form="3/minute")


async def post_from(api: IntakeApi, form: IntakeForm, ip: str, *, n: int = 0) -> int:
    """Status of a beta application sent from peer address ``ip``."""
    async with client_for(api.app, client_ip=ip) as client:
        response = await client.post(
            BETA,
            params={"form": form.public_id},
            json=api.beta(form, email=f"applicant{n}@example.com"),
        )
    return response.status_code


async def post_forwarded(api: IntakeApi, form: IntakeForm, forwarded_for: str, n: int) -> int:
    """Status of a beta application carrying ``X-Forwarded-For: forwarded_for``."""
    body = api.beta(form, email=f"applicant{n}@example.com")
    response = await api.post(BETA, form, body, headers={"X-Forwarded-For": forwarded_for})
    return response.status_code


@pytest.mark.redis
class TestAcrossReplicas:
    async def test_the_per_ip_limit_holds_across_two_apps(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        async with intake_api(settings, PER_IP) as one, intake_api(settings, PER_IP) as two:
            form = await one.create_form()
            statuses = [
                (
                    await replica.post(BETA, form, replica.beta(form, email=f"a{n}@example.com"))
                ).status_code
                for n, replica in enumerate([one, two, one, two])
            ]
            assert statuses == [202, 202, 202, 429]
            refused = await two.post(
                BETA, form, two.beta(form, email="late@example.com"), headers={"Origin": ORIGIN}
            )
            assert refused.status_code == 429
            assert refused.json()["error"] == "rate_limited"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.headers["access-control-allow-origin"] == ORIGIN
            assert await one.count(form) == 3

    async def test_the_per_form_limit_holds_across_two_apps_and_addresses(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        async with intake_api(settings, PER_FORM) as one, intake_api(settings, PER_FORM) as two:
            form = await one.create_form()
            other_form = await one.create_form()
            statuses = [
                await post_from(replica, form, f"198.51.100.{n}", n=n)
                for n, replica in enumerate([one, two, one, two])
            ]
            assert statuses == [202, 202, 202, 429]
            # Another form has its own budget.
            assert await post_from(two, other_form, "198.51.100.9", n=9) == 202


class TestPerIpLimit:
    async def test_a_spoofed_forwarded_for_does_not_evade_it(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # The peer is not a trusted proxy, so its X-Forwarded-For is not believed.
        settings = make_settings(trusted_proxies="10.0.0.0/8")
        async with intake_api(settings, PER_IP, client_ip="203.0.113.7") as api:
            form = await api.create_form()
            statuses = [await post_forwarded(api, form, f"192.0.2.{n}", n) for n in range(4)]
            assert statuses == [202, 202, 202, 429]

    async def test_behind_a_trusted_proxy_each_client_has_its_own_budget(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(trusted_proxies="10.0.0.0/8")
        async with intake_api(settings, PER_IP, client_ip="10.0.0.2") as api:
            form = await api.create_form()
            for client in ("192.0.2.1", "192.0.2.2"):
                statuses = [await post_forwarded(api, form, client, n) for n in range(4)]
                assert statuses == [202, 202, 202, 429], client

    async def test_beta_and_contact_count_separately(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with intake_api(make_settings(), PER_IP) as api:
            beta = await api.create_form()
            contact = await api.create_form(kind="contact")
            statuses = [await post_from(api, beta, "127.0.0.1", n=n) for n in range(4)]
            assert statuses == [202, 202, 202, 429]
            assert (await api.post(CONTACT, contact, api.contact(contact))).status_code == 202

    async def test_refused_requests_write_nothing(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with intake_api(make_settings(), PER_IP) as api:
            form = await api.create_form()
            statuses = [await post_from(api, form, "127.0.0.1", n=n) for n in range(5)]
            assert statuses == [202, 202, 202, 429, 429]
            assert await api.count(form) == 3
