"""One application per e-mail per form, idempotent retries, and answers that reveal neither."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from xynergy.platform.config import Settings


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url)) as running_api:
        yield running_api


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body bytes and headers: everything but the request id."""
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-request-id")
    return response.status_code, response.content, headers


class TestOneApplicationPerEmail:
    async def test_a_known_email_gets_the_same_answer_and_stores_nothing(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form()
        headers = {"Origin": ORIGIN}
        first = await api.post(BETA, form, api.beta(form), headers=headers)
        again = await api.post(
            BETA,
            form,
            api.beta(form, name="Someone Else", use_case="A completely different use case."),
            headers=headers,
        )
        assert first.status_code == 202, first.text
        assert comparable(again) == comparable(first)
        assert first.headers["x-request-id"] != again.headers["x-request-id"]
        [row] = await api.rows(form)
        assert row.name == "Ada Lovelace"

    async def test_address_case_does_not_make_a_second_applicant(self, api: IntakeApi) -> None:
        form = await api.create_form()
        await api.post(BETA, form, api.beta(form, email="ada@example.com"))
        response = await api.post(BETA, form, api.beta(form, email="ADA@Example.com"))
        assert response.status_code == 202
        assert await api.count(form) == 1

    async def test_the_same_email_may_apply_to_another_form(self, api: IntakeApi) -> None:
        form = await api.create_form()
        other = await api.create_form(tenant="globex")
        await api.post(BETA, form, api.beta(form))
        await api.post(BETA, other, api.beta(other))
        assert (await api.count(form), await api.count(other)) == (1, 1)

    async def test_concurrent_applications_store_one(self, api: IntakeApi) -> None:
        form = await api.create_form()
        responses = await asyncio.gather(
            *(api.post(BETA, form, api.beta(form, name=f"Ada {n}")) for n in range(5))
        )
        assert {comparable(r)[:2] for r in responses} == {(202, b'{"status":"received"}')}
        assert await api.count(form) == 1


class TestIdempotencyKey:
    @pytest.mark.parametrize("kind", ["beta", "contact"])
    async def test_a_retry_with_the_same_key_creates_nothing(
        self, api: IntakeApi, kind: str
    ) -> None:
        form = await api.create_form(kind=kind)
        path, body = (BETA, api.beta(form)) if kind == "beta" else (CONTACT, api.contact(form))
        headers = {"Idempotency-Key": "retry-0001"}
        first = await api.post(path, form, body, headers=headers)
        retry = await api.post(path, form, body, headers=headers)
        assert first.status_code == 202, first.text
        assert comparable(retry) == comparable(first)
        assert await api.count(form) == 1

    async def test_different_keys_are_different_messages(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        for key in ("key-0001", "key-0002"):
            response = await api.post(
                CONTACT, form, api.contact(form), headers={"Idempotency-Key": key}
            )
            assert response.status_code == 202
        assert await api.count(form) == 2

    async def test_a_key_belongs_to_its_form(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        other = await api.create_form(kind="contact")
        headers = {"Idempotency-Key": "shared-key"}
        await api.post(CONTACT, form, api.contact(form), headers=headers)
        await api.post(CONTACT, other, api.contact(other), headers=headers)
        assert (await api.count(form), await api.count(other)) == (1, 1)

    async def test_the_key_is_stored(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        await api.post(CONTACT, form, api.contact(form), headers={"Idempotency-Key": "k-42"})
        [row] = await api.rows(form)
        assert row.idempotency_key == "k-42"
