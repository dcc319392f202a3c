"""Rotating a form's webhook secret without losing a delivery (issue 17, item 5).

A receiver on 127.0.0.1 first knows only the old secret, then only the new one.
During the grace period after a rotation both accept every delivery (each is
signed with both secrets); after it, only the new secret signs, so the old-only
receiver refuses (and the delivery is retried) while the new one accepts. No
secret value appears in any log line of the whole scenario. On SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import structlog

from tests.helpers import auth, issue_key
from tests.intelligence_gateway.intake_api import ORIGIN, IntakeApi, intake_api
from tests.intelligence_gateway.outbox.support import (
    WebhookReceiver,
    fast_intake,
    fast_outbox,
    outbox_rows,
    submit,
    wait_until,
)
from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.logging import configure_logging, configure_safe_defaults

# Long enough for two deliveries on a loaded machine, short enough to wait out.
GRACE_SECONDS = 4.0
FORMS = "/api/forms"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    configure_safe_defaults()
    logging.getLogger().handlers.clear()


async def _delivered(api: IntakeApi, receiver: WebhookReceiver, form_id: str) -> str:
    """Submit once and wait until the receiver accepted that submission; its id."""
    [submission] = await submit(api.platform, form_id, 1)
    await wait_until(lambda: submission in receiver.delivered_submissions())
    return submission


async def _stored(api: IntakeApi, form_id: str) -> IntakeForm:
    async with api.platform.sessionmaker() as session:
        form = await session.get(IntakeForm, form_id)
        assert form is not None
        return form


async def test_both_secrets_sign_during_the_grace_period_then_only_the_new_one(
    make_settings: Callable[..., Settings],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
) -> None:
    # In the test body: only here is sys.stdout the stream capsys reads. Uncached,
    # so no logger keeps that stream after the test. INFO: the production level.
    configure_logging("INFO")
    structlog.configure(cache_logger_on_first_use=False)
    settings = make_settings(database_url=database_url, **fast_outbox())
    intake = fast_intake(webhook_secret_grace_seconds=GRACE_SECONDS)
    async with WebhookReceiver() as receiver, intake_api(settings, intake) as api:
        _, admin = await issue_key(api.platform, scopes=("intake:admin", "intake:read"))
        headers = auth(admin.secret)
        created = await api.client.post(
            FORMS,
            json={
                "kind": "contact",
                "name": "Contact",
                "allowed_origins": [ORIGIN],
                "webhook_url": receiver.url,
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        form_id, old = created.json()["id"], created.json()["webhook_secret"]
        receiver.secret = old
        await _delivered(api, receiver, form_id)
        assert receiver.signatures[-1].count("v1=") == 1  # one secret before any rotation

        rotated_at = time.monotonic()
        rotated = await api.client.patch(
            f"{FORMS}/{form_id}", json={"rotate_webhook_secret": True}, headers=headers
        )
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()["webhook_secret"]
        assert new != old
        expires_at = datetime.fromisoformat(rotated.json()["previous_webhook_secret_expires_at"])
        stored = await _stored(api, form_id)
        assert (stored.webhook_secret, stored.previous_webhook_secret) == (new, old)

        # Grace period: the receiver still holding the old secret accepts, and so
        # does the one already switched to the new secret.
        await _delivered(api, receiver, form_id)
        receiver.secret = new
        await _delivered(api, receiver, form_id)
        assert time.monotonic() - rotated_at < GRACE_SECONDS, "too slow to test the grace period"
        assert receiver.bad_signatures == 0
        assert receiver.signatures[-1].count("v1=") == 2

        # After the grace period only the new secret signs: the old-only receiver
        # refuses (the delivery is kept and retried), the new-only one accepts it.
        await asyncio.sleep(max(0.0, (expires_at - utcnow()).total_seconds()) + 0.1)
        receiver.secret = old
        [late] = await submit(api.platform, form_id, 1)
        await wait_until(lambda: receiver.bad_signatures >= 1)
        assert late not in receiver.delivered_submissions()
        assert receiver.signatures[-1].count("v1=") == 1
        receiver.secret = new
        await wait_until(lambda: late in receiver.delivered_submissions())

        got = await api.client.get(f"{FORMS}/{form_id}", headers=headers)
        listed = await api.client.get(FORMS, headers=headers)
        rows = await outbox_rows(api.platform)

    assert all(row.delivered_at is not None for row in rows)
    assert len(receiver.delivered) == 4
    # Shown once each (creation, rotation), then never again: not by the API...
    for secret in (old, new):
        assert secret not in got.text + listed.text
        assert all(secret not in (row.last_error or "") for row in rows)
    # ...nor in any log line of the whole scenario.
    captured = capsys.readouterr()
    logged = captured.out + captured.err
    assert "outbox.delivery" in logged  # the scenario's logs were captured
    assert old not in logged
    assert new not in logged
