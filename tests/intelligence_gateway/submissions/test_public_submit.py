"""POST /api/beta-applications and /api/contact: what is stored, and which form answers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.intelligence_gateway.intake_api import BETA, CONTACT, ORIGIN, IntakeApi, intake_api
from tests.intelligence_gateway.outbox.support import submission_id
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.submissions import intake_service
from xynergy.platform.config import Settings

RECEIVED = b'{"status":"received"}'
HOOK = "https://hooks.acme.example/intake"


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[IntakeApi]:
    async with intake_api(make_settings(database_url=database_url)) as running_api:
        yield running_api


class TestSubmitBetaApplication:
    async def test_stores_the_application_sanitised_with_tracking(self, api: IntakeApi) -> None:
        form = await api.create_form()
        body = api.beta(
            form,
            name="  <b>Ada</b> Lovelace ",
            email="Ada.Lovelace@EXAMPLE.Com",
            company="Engines & Co",
            website="engines.example/about",
            use_case="We <script>alert(1)</script>compute tables.",
            source="newsletter",
            utm_source="mail",
            utm_campaign="launch",
            utm_term="",
        )

        response = await api.post(BETA, form, body, headers={"Origin": ORIGIN})

        assert response.status_code == 202, response.text
        assert response.content == RECEIVED
        [row] = await api.rows(form)
        assert (row.tenant_id, row.kind, row.status) == (form.tenant_id, "beta", "new")
        assert row.name == "Ada Lovelace"
        assert row.email == "Ada.Lovelace@example.com"
        assert row.dedupe_key == "ada.lovelace@example.com"
        assert row.company == "Engines &amp; Co"
        assert row.website == "https://engines.example/about"
        assert row.body == "We compute tables."
        assert row.subject is None
        assert row.source == "newsletter"
        assert row.utm == {"utm_source": "mail", "utm_campaign": "launch"}
        assert row.spam_reasons == []
        assert len(row.content_hash) == 64
        # Keyed, so not the plain hash of the address either.
        assert row.client_ip_hash not in {"127.0.0.1", hashlib.sha256(b"127.0.0.1").hexdigest()}
        assert len(row.client_ip_hash) == 64
        assert row.created_day == row.created_at.date()

    async def test_unknown_form_is_404_and_writes_nothing(self, api: IntakeApi) -> None:
        response = await api.client.post(BETA, params={"form": "frm_nope"}, json={"name": "x"})
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert "access-control-allow-origin" not in response.headers
        assert await api.count() == 0

    async def test_missing_form_parameter_is_422(self, api: IntakeApi) -> None:
        response = await api.client.post(BETA, json={"name": "x"})
        assert response.status_code == 422
        assert response.json()["error"] == "validation_failed"

    async def test_inactive_form_is_404(self, api: IntakeApi) -> None:
        form = await api.create_form(active=False)
        response = await api.post(BETA, form, api.beta(form))
        assert response.status_code == 404
        assert await api.count() == 0

    async def test_contact_form_id_on_the_beta_endpoint_is_404(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        response = await api.post(BETA, form, api.beta(form))
        assert response.status_code == 404
        assert await api.count() == 0


class TestSubmitContactMessage:
    async def test_stores_the_message(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="contact")
        body = api.contact(form, subject="Pricing <i>now</i>", utm_medium="cpc")

        response = await api.post(CONTACT, form, body)

        assert response.status_code == 202, response.text
        assert response.content == RECEIVED
        [row] = await api.rows(form)
        assert (row.kind, row.status, row.subject) == ("contact", "new", "Pricing now")
        assert row.body == "Please call me back about pricing."
        assert row.dedupe_key is None
        assert row.utm == {"utm_medium": "cpc"}

    async def test_a_contact_form_takes_many_messages_from_one_address(
        self, api: IntakeApi
    ) -> None:
        form = await api.create_form(kind="contact")
        for number in range(2):
            body = api.contact(form, message=f"Question number {number}")
            assert (await api.post(CONTACT, form, body)).status_code == 202
        assert await api.count(form) == 2

    async def test_beta_form_id_on_the_contact_endpoint_is_404(self, api: IntakeApi) -> None:
        form = await api.create_form(kind="beta")
        response = await api.post(CONTACT, form, api.contact(form))
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert await api.count() == 0


class TestWebhookNotification:
    async def test_a_genuine_submission_is_enqueued_in_its_own_transaction(
        self, api: IntakeApi, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls: list[tuple[str, str, str, bool]] = []

        async def record(
            session: AsyncSession, *, form: IntakeForm, submission: Submission
        ) -> None:
            calls.append((form.id, submission.id, submission.status, session.in_transaction()))

        monkeypatch.setattr(intake_service, "enqueue_webhook", record)
        form = await api.create_form()
        await api.post(BETA, form, api.beta(form))
        [row] = await api.rows(form)
        assert calls == [(form.id, row.id, "new", True)]

    async def test_spam_and_duplicates_add_no_notification(self, api: IntakeApi) -> None:
        await api.app.state.outbox.stop()  # the hook's host is never looked up
        form = await api.create_form(webhook_url=HOOK)
        await api.post(BETA, form, api.beta(form))
        await api.post(BETA, form, api.beta(form, use_case="Applying a second time, same me."))
        await api.post(BETA, form, api.beta(form, email="bot@example.com", nickname="x"))
        [row] = await api.rows(form, status="new")
        assert [submission_id(message) for message in await api.outbox()] == [row.id]
        assert await api.count(form) == 2

    async def test_a_failing_enqueue_stores_nothing(
        self, api: IntakeApi, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def fail(session: AsyncSession, *, form: IntakeForm, submission: Submission) -> None:
            raise RuntimeError("outbox unavailable")

        monkeypatch.setattr(intake_service, "enqueue_webhook", fail)
        form = await api.create_form()
        response = await api.post(BETA, form, api.beta(form))
        assert response.status_code == 500
        assert await api.count(form) == 0
