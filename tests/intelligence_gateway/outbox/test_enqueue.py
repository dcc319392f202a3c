"""enqueue_webhook: the outbox row commits, or rolls back, with its submission."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from tests.intelligence_gateway.outbox.support import (
    create_form,
    new_submission,
    outbox_rows,
    submit,
)
from tests.intelligence_gateway.outbox.support import submission_id as submission_id_of
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.intelligence_gateway.outbox.enqueue import SUBMISSION_CREATED, enqueue_webhook
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

HOOK = "https://hooks.acme.example/xynergy"


class TestEnqueueWebhook:
    async def test_adds_a_row_with_the_complete_payload(self, platform: Platform) -> None:
        form_id = await create_form(platform, webhook_url=HOOK)
        [submission_id] = await submit(platform, form_id, 1)

        [row] = await outbox_rows(platform)
        payload = json.loads(row.payload)
        assert (submission_id_of(row), row.source_kind, row.source_id, row.event) == (
            submission_id,
            "intake-form",
            form_id,
            SUBMISSION_CREATED,
        )
        assert (row.attempts, row.delivered_at, row.failed_at) == (0, None, None)
        assert payload["id"] == row.id
        assert payload["event"] == SUBMISSION_CREATED
        assert payload["form"]["id"] == form_id
        assert payload["form"]["kind"] == "contact"
        assert payload["submission"]["id"] == submission_id
        assert payload["submission"]["email"] == "person0@example.com"
        assert payload["submission"]["utm"] == {"utm_source": "test"}
        assert {"created_at", "status", "body", "subject", "source", "company", "name"} <= set(
            payload["submission"]
        )

    async def test_assigns_the_submission_id_when_unset(self, platform: Platform) -> None:
        form_id = await create_form(platform, webhook_url=HOOK)
        async with unit_of_work(platform.sessionmaker) as session:
            form = await session.get(IntakeForm, form_id)
            assert form is not None
            submission = new_submission(form, 1)
            submission.id = None  # type: ignore[assignment]
            session.add(submission)
            await enqueue_webhook(session, form=form, submission=submission)
        [row] = await outbox_rows(platform)
        assert submission_id_of(row) == submission.id
        assert json.loads(row.payload)["submission"]["id"] == submission.id

    async def test_a_submission_that_was_not_stored_adds_nothing(self, platform: Platform) -> None:
        form_id = await create_form(platform, webhook_url=HOOK)
        async with unit_of_work(platform.sessionmaker) as session:
            form = await session.get(IntakeForm, form_id)
            assert form is not None
            # Described but never inserted, as for a duplicate submission.
            await enqueue_webhook(session, form=form, submission=new_submission(form, 1))
        assert await outbox_rows(platform) == []

    async def test_a_form_without_webhook_adds_nothing(self, platform: Platform) -> None:
        form_id = await create_form(platform, webhook_url=None)
        await submit(platform, form_id, 2)
        assert await outbox_rows(platform) == []

    async def test_rolls_back_with_the_submission(self, platform: Platform) -> None:
        form_id = await create_form(platform, webhook_url=HOOK)

        async def submit_then_fail() -> None:
            async with unit_of_work(platform.sessionmaker) as session:
                form = await session.get(IntakeForm, form_id)
                assert form is not None
                submission = new_submission(form, 1)
                session.add(submission)
                await enqueue_webhook(session, form=form, submission=submission)
                await session.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            await submit_then_fail()
        assert await outbox_rows(platform) == []
        async with unit_of_work(platform.sessionmaker) as session:
            assert await session.scalar(select(func.count()).select_from(Submission)) == 0
