"""The whole intake through the app: admin creates a form, a page submits, the
webhook arrives signed, and the admin side lists, counts and exports it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.helpers import auth, issue_key
from tests.intelligence_gateway.intake_api import BETA, ORIGIN, intake_api
from tests.intelligence_gateway.outbox.support import WebhookReceiver, fast_intake, fast_outbox
from xynergy.platform.config import Settings


async def test_a_submission_travels_from_the_page_to_the_webhook_and_the_admin(
    make_settings: Callable[..., Settings],
) -> None:
    async with intake_api(make_settings(**fast_outbox()), fast_intake()) as api:
        _, admin = await issue_key(api.platform, scopes=("intake:admin", "intake:read"))
        headers = auth(admin.secret)
        async with WebhookReceiver() as receiver:
            created = await api.client.post(
                "/api/forms",
                json={
                    "kind": "beta",
                    "name": "Beta list",
                    "allowed_origins": [ORIGIN],
                    "webhook_url": receiver.url,
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
            form = created.json()
            receiver.secret = form["webhook_secret"]
            listed = await api.client.get(f"/api/forms/{form['id']}", headers=headers)
            assert "webhook_secret" not in listed.json() or listed.json()["webhook_secret"] is None

            token = await api.client.get(f"/api/forms/{form['public_id']}/token")
            assert token.status_code == 200
            await asyncio.sleep(api.app.state.intake.form_token_min_fill_seconds)
            submitted = await api.client.post(
                BETA,
                params={"form": form["public_id"]},
                json={
                    "name": "Ada Lovelace",
                    "email": "Ada@Example.COM",
                    "use_case": "Analytical engines for marketing teams.",
                    "form_token": token.json()["token"],
                    "utm_source": "newsletter",
                },
                headers={"Origin": ORIGIN},
            )
            assert submitted.status_code == 202, submitted.text
            assert submitted.headers["access-control-allow-origin"] == ORIGIN

            async with asyncio.timeout(10):
                while not receiver.delivered:
                    await asyncio.sleep(0.02)

            page = (await api.client.get("/api/beta-applications", headers=headers)).json()
            stats = (await api.client.get("/api/stats", headers=headers)).json()
            export = await api.client.get("/api/submissions/export.csv", headers=headers)

    (payload,) = receiver.delivered.values()
    assert receiver.bad_signatures == 0
    # The domain is normalised; the local part keeps its case (dedupe ignores it).
    assert payload["submission"]["email"] == "Ada@example.com"
    assert [item["id"] for item in page["items"]] == [payload["submission"]["id"]]
    assert page["items"][0]["status"] == "new"
    assert stats["total"] == 1
    assert stats["by_kind"]["beta"] == 1
    assert export.status_code == 200
    assert "Ada@example.com" in export.text


async def test_notifications_survive_a_receiver_outage_and_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(**fast_outbox())
    intake = fast_intake(rate_per_ip="100/minute")
    async with WebhookReceiver() as receiver:
        await receiver.refuse()
        async with intake_api(settings, intake) as first:
            _, admin = await issue_key(first.platform, scopes=("intake:admin",))
            created = await first.client.post(
                "/api/forms",
                json={
                    "kind": "beta",
                    "name": "Beta",
                    "allowed_origins": [ORIGIN],
                    "webhook_url": receiver.url,
                },
                headers=auth(admin.secret),
            )
            form = created.json()
            receiver.secret = form["webhook_secret"]
            token = first.token(form["public_id"])
            statuses = [
                (
                    await first.client.post(
                        BETA,
                        params={"form": form["public_id"]},
                        json={
                            "name": f"Applicant {n}",
                            "email": f"applicant{n}@example.com",
                            "use_case": f"Use case number {n} for the beta.",
                            "form_token": token,
                        },
                    )
                ).status_code
                for n in range(6)
            ]
            await asyncio.sleep(0.3)  # a few failed delivery attempts while it is down
        # The first app is gone with its backlog undelivered; a new one picks it up.
        await receiver.up()
        async with intake_api(settings, intake):
            async with asyncio.timeout(15):
                while len(receiver.delivered) < 6:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)  # anything sent twice would arrive by now
    assert statuses == [202] * 6
    assert len(set(receiver.delivered_submissions())) == 6
    assert receiver.duplicates == 0
    assert receiver.bad_signatures == 0
