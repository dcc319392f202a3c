"""Spam is stored flagged with its reasons and answered exactly like a real submission."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.platform.config import Settings

RECEIVED = b'{"status":"received"}'
INTAKE = IntakeSettings(spam_max_links=2, spam_repeat_threshold=2)


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url), INTAKE) as running_api:
        yield running_api


def assert_received(response: httpx.Response) -> None:
    assert response.status_code == 202, response.text
    assert response.content == RECEIVED


class TestSpamSignals:
    async def test_a_filled_honeypot_is_spam(self, api: IntakeApi) -> None:
        form = await api.create_form()
        assert_received(await api.post(BETA, form, api.beta(form, nickname="bot")))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["honeypot"])

    async def test_a_missing_token_is_spam(self, api: IntakeApi) -> None:
        form = await api.create_form()
        body = api.beta(form)
        del body["form_token"]
        assert_received(await api.post(BETA, form, body))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["token_missing"])

    @pytest.mark.parametrize("tamper", ["signature", "time", "other_form", "garbage"])
    async def test_a_forged_token_is_spam(self, api: IntakeApi, tamper: str) -> None:
        form = await api.create_form()
        other = await api.create_form()
        version, issued, signature = api.token(form.public_id).split(".")
        token = {
            "signature": f"{version}.{issued}.{signature[:-2]}AA",
            "time": f"{version}.{int(issued) - 1000}.{signature}",
            "other_form": api.token(other.public_id),
            "garbage": "not-a-token",
        }[tamper]
        assert_received(await api.post(BETA, form, api.beta(form, form_token=token)))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["token_invalid"])

    async def test_an_expired_token_is_spam(self, api: IntakeApi) -> None:
        form = await api.create_form()
        stale = api.token(form.public_id, age_seconds=INTAKE.form_token_max_age_seconds + 5)
        assert_received(await api.post(BETA, form, api.beta(form, form_token=stale)))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["token_expired"])

    async def test_a_token_used_sooner_than_the_minimum_fill_time_is_spam(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form()
        issued = await api.client.get(f"/api/forms/{form.public_id}/token")
        assert issued.status_code == 200, issued.text
        assert issued.json()["min_fill_seconds"] == INTAKE.form_token_min_fill_seconds

        body = api.beta(form, form_token=issued.json()["token"])
        assert_received(await api.post(BETA, form, body))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["too_fast"])

    async def test_a_token_from_the_endpoint_is_good_after_the_fill_time(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        intake = IntakeSettings(form_token_min_fill_seconds=0)
        async with intake_api(make_settings(database_url=database_url), intake) as api:
            form = await api.create_form()
            token = (await api.client.get(f"/api/forms/{form.public_id}/token")).json()["token"]
            assert_received(await api.post(BETA, form, api.beta(form, form_token=token)))
            [row] = await api.rows(form)
            assert (row.status, row.spam_reasons) == ("new", [])

    async def test_links_up_to_the_limit_are_fine_and_more_are_spam(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        two = "See https://a.example and www.b.example please"
        three = "Buy at http://a.example http://b.example ＨＴＴＰＳ://c.example"
        assert_received(await api.post(CONTACT, form, api.contact(form, message=two)))
        assert_received(await api.post(CONTACT, form, api.contact(form, message=three)))
        # Links in the name count too; the website field does not.
        name = api.contact(form, name="www.x.example www.y.example www.z.example")
        assert_received(await api.post(CONTACT, form, name))
        statuses = [(row.status, row.spam_reasons) for row in await api.rows(form)]
        assert statuses == [
            ("new", []),
            ("spam", ["too_many_links"]),
            ("spam", ["too_many_links"]),
        ]

    async def test_links_count_as_sent_even_when_sanitising_drops_them(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form(kind="contact")
        anchors = " ".join(f'<a href="https://{n}.example">offer {n}</a>' for n in "abc")
        assert_received(await api.post(CONTACT, form, api.contact(form, message=anchors)))
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["too_many_links"])
        assert row.body == "offer a offer b offer c"

    async def test_the_same_text_again_and_again_is_spam(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        other = await api.create_form(kind="contact")
        for variant in ["Cheap offer now", "  CHEAP   offer now ", "cheap offer NOW"]:
            assert_received(await api.post(CONTACT, form, api.contact(form, message=variant)))
        # Another form's count is its own.
        assert_received(
            await api.post(CONTACT, other, api.contact(other, message="Cheap offer now"))
        )
        assert [row.status for row in await api.rows(form)] == ["new", "new", "spam"]
        assert (await api.rows(form))[2].spam_reasons == ["repeated_content"]
        assert [row.status for row in await api.rows(other)] == ["new"]

    async def test_an_origin_the_form_does_not_list_is_spam(self, api: IntakeApi) -> None:
        form = await api.create_form()
        response = await api.post(
            BETA, form, api.beta(form), headers={"Origin": "https://evil.example"}
        )
        assert_received(response)
        assert "access-control-allow-origin" not in response.headers
        [row] = await api.rows(form)
        assert (row.status, row.spam_reasons) == ("spam", ["origin_not_allowed"])

    async def test_every_reason_is_recorded(self, api: IntakeApi) -> None:
        form = await api.create_form()
        body = api.beta(form, nickname="x", form_token="v1.1.x")
        assert_received(await api.post(BETA, form, body))
        [row] = await api.rows(form)
        assert row.spam_reasons == ["honeypot", "token_invalid"]

    async def test_spam_does_not_keep_the_real_applicant_out(self, api: IntakeApi) -> None:
        form = await api.create_form()
        assert_received(await api.post(BETA, form, api.beta(form, nickname="bot")))
        assert_received(await api.post(BETA, form, api.beta(form)))
        rows = await api.rows(form)
        assert [(row.status, row.dedupe_key) for row in rows] == [
            ("spam", None),
            ("new", "ada@example.com"),
        ]

    async def test_spam_and_genuine_answers_are_identical(self, api: IntakeApi) -> None:
        form = await api.create_form()
        genuine = await api.post(BETA, form, api.beta(form), headers={"Origin": ORIGIN})
        caught = await api.post(
            BETA,
            form,
            api.beta(form, email="bot@example.com", nickname="x"),
            headers={"Origin": ORIGIN},
        )
        assert (caught.status_code, caught.content) == (genuine.status_code, genuine.content)
        assert without_request_id(caught.headers) == without_request_id(genuine.headers)


def without_request_id(headers: httpx.Headers) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in headers.items() if k != "x-request-id")
