"""One rule for stored free text, on SQLite and PostgreSQL: display text is stored
without markup and HTML-escaped, whichever service stores it.

Content titles and authors, campaign fields, template lines, form names and
intake fields were once stored as raw HTML while bodies were sanitised.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.platform.hostile import (
    SAMPLE_BODIES,
    UNLIMITED,
    HostilePlatform,
    hostile_platform,
    template_body,
)
from xynergy.intelligence_gateway.models import Submission
from xynergy.platform.config import Settings

SENT = '<b onclick="x()">Fresh</b> & <script>alert(1)</script>"tasty"'
STORED = 'Fresh &amp; "tasty"'


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url, rate_limits=UNLIMITED)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[HostilePlatform]:
    async with hostile_platform(settings) as started:
        yield started


async def created(api: HostilePlatform, path: str, body: dict[str, Any], **params: str) -> Any:
    response = await api.client.post(path, json=body, params=params, headers=api.headers)
    assert response.status_code in (201, 202), response.text
    return response.json()


async def fetched(api: HostilePlatform, path: str) -> Any:
    response = await api.client.get(path, headers=api.headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestStoredText:
    async def test_content_title_and_author_are_plain_and_the_body_keeps_allowed_markup(
        self, api: HostilePlatform
    ) -> None:
        made = await created(
            api,
            "/aso-engine/api/content",
            {"title": SENT, "author": SENT, "body": "<p>" + SENT + "</p>"},
        )

        stored = await fetched(api, f"/aso-engine/api/content/{made['id']}")

        assert (stored["title"], stored["author"]) == (STORED, STORED)
        assert stored["body"] == '<p><b>Fresh</b> &amp; "tasty"</p>'

    async def test_a_content_update_is_sanitised_the_same_way(self, api: HostilePlatform) -> None:
        content_id = api.path_values["content_id"]
        response = await api.client.patch(
            f"/aso-engine/api/content/{content_id}",
            json={"title": SENT, "author": SENT},
            headers=api.headers,
        )
        assert response.status_code == 200, response.text

        stored = await fetched(api, f"/aso-engine/api/content/{content_id}")

        assert (stored["title"], stored["author"]) == (STORED, STORED)

    async def test_campaign_fields_are_plain(self, api: HostilePlatform) -> None:
        request = SAMPLE_BODIES[("POST", "/marketing-engine/campaigns/generate")]
        made = await created(
            api,
            "/marketing-engine/campaigns/generate",
            {**request, "name": SENT, "goals": [SENT], "audience": SENT, "tone": SENT},
        )

        stored = await fetched(api, f"/marketing-engine/campaigns/{made['id']}")

        assert stored["name"] == STORED
        assert stored["goals"] == [STORED]
        assert (stored["audience"], stored["tone"]) == (STORED, STORED)

    async def test_template_lines_are_plain(self, api: HostilePlatform) -> None:
        body = {**template_body(), "summary": SENT, "key_messages": [SENT]}
        await created(
            api,
            "/marketing-engine/templates",
            {"business_type": "florist", "industry": "retail", "body": body},
        )

        stored = await fetched(api, "/marketing-engine/templates/florist/retail")

        assert stored["body"]["summary"] == STORED
        assert stored["body"]["key_messages"] == [STORED]

    async def test_a_form_name_is_plain(self, api: HostilePlatform) -> None:
        made = await created(
            api,
            "/intelligence-gateway/api/forms",
            {"kind": "contact", "name": SENT, "allowed_origins": ["https://www.acme.example"]},
        )

        stored = await fetched(api, f"/intelligence-gateway/api/forms/{made['id']}")

        assert stored["name"] == STORED

    async def test_intake_fields_are_plain(self, api: HostilePlatform) -> None:
        await created(
            api,
            "/intelligence-gateway/api/contact",
            {
                "name": SENT,
                "email": "grace@example.com",
                "subject": SENT,
                "message": SENT + "\nSecond line, long enough.",
                "utm_campaign": SENT,
            },
            form=api.form_public_ids["contact"],
        )

        async with api.platform.sessionmaker() as session:
            submission = (await session.scalars(select(Submission).limit(1))).one()

        assert (submission.name, submission.subject) == (STORED, STORED)
        assert submission.body == STORED + "\nSecond line, long enough."
        assert submission.utm == {"utm_campaign": STORED}
