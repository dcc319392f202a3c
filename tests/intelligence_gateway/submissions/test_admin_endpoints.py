"""Submissions admin API (lists, one submission, status changes) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.corpus import SQL_INJECTIONS
from tests.intelligence_gateway.submissions.test_admin_support import (
    BETA_APPLICATIONS,
    MISSING_ID,
    SUBMISSIONS,
    AdminApi,
    admin_api,
    assert_error,
    created,
)
from xynergy.intelligence_gateway.models import Submission
from xynergy.platform.config import Settings

FIELDS = {
    "id",
    "form_id",
    "kind",
    "status",
    "email",
    "name",
    "company",
    "website",
    "subject",
    "body",
    "source",
    "utm",
    "spam_reasons",
    "created_at",
    "updated_at",
}
STATUSES = ["new", "reviewed", "accepted", "rejected", "spam"]
DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
INJECTIONS = SQL_INJECTIONS


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AdminApi]:
    async with admin_api(settings) as started:
        yield started


class TestListSubmissions:
    async def test_walks_every_row_once_newest_first(self, api: AdminApi) -> None:
        form = await api.add_form()
        # Three rows share one timestamp: the id breaks the tie, across pages too.
        moments = [DAY, DAY, DAY, DAY + timedelta(seconds=1), DAY - timedelta(days=1)] * 2
        ids = {await api.add_submission(form, created_at=moment) for moment in moments}
        items = await api.walk(SUBMISSIONS)
        assert [item["id"] for item in items] != []
        assert len(items) == len(ids) == len({item["id"] for item in items})
        assert {item["id"] for item in items} == ids
        keys = [(c, item["id"]) for c, item in zip(created(items), items, strict=True)]
        assert keys == sorted(keys, reverse=True)
        assert set(items[0]) == FIELDS

    async def test_another_tenants_rows_are_never_listed(self, api: AdminApi) -> None:
        mine = await api.add_submission(await api.add_form())
        other_form = await api.add_form(tenant_id=api.other_tenant_id)
        theirs = await api.add_submission(other_form, tenant_id=api.other_tenant_id)
        assert await api.ids(SUBMISSIONS) == [mine]
        assert await api.ids(SUBMISSIONS, form=other_form) == []
        assert [s["id"] for s in await api.walk(SUBMISSIONS, headers=api.other)] == [theirs]

    async def test_filters(self, api: AdminApi) -> None:
        beta, contact = await api.add_form(), await api.add_form(kind="contact")
        a = await api.add_submission(beta, created_at=DAY, source="newsletter")
        b = await api.add_submission(beta, created_at=DAY + timedelta(days=1), status="spam")
        c = await api.add_submission(
            contact, kind="contact", created_at=DAY + timedelta(days=2), source="newsletter"
        )
        assert await api.ids(SUBMISSIONS, kind="contact") == [c]
        assert await api.ids(SUBMISSIONS, status="spam") == [b]
        assert await api.ids(SUBMISSIONS, status="new") == [c, a]
        assert await api.ids(SUBMISSIONS, form=beta) == [b, a]
        assert await api.ids(SUBMISSIONS, source="newsletter") == [c, a]
        assert await api.ids(SUBMISSIONS, source="news") == []
        # A date is a whole UTC day; a time is exact (since inclusive, until exclusive).
        assert await api.ids(SUBMISSIONS, since="2026-03-11") == [c, b]
        assert await api.ids(SUBMISSIONS, until="2026-03-11") == [b, a]
        assert await api.ids(SUBMISSIONS, since="2026-03-11", until="2026-03-11") == [b]
        assert await api.ids(SUBMISSIONS, since=(DAY + timedelta(days=1)).isoformat()) == [c, b]
        assert await api.ids(SUBMISSIONS, until=(DAY + timedelta(days=1)).isoformat()) == [a]
        assert await api.ids(SUBMISSIONS, since="2026-03-11T14:00:00+02:00") == [c, b]
        assert await api.ids(SUBMISSIONS, kind="beta", source="newsletter", form=beta) == [a]

    @pytest.mark.parametrize("payload", INJECTIONS)
    async def test_filter_values_are_plain_values(self, api: AdminApi, payload: str) -> None:
        form = await api.add_form()
        await api.add_submission(form, source="newsletter")
        exact = await api.add_submission(form, source=payload)
        assert await api.ids(SUBMISSIONS, source=payload) == [exact]
        assert await api.count(Submission) == 2

    @pytest.mark.parametrize(
        "params",
        [
            {"kind": "beta' OR '1'='1"},
            {"status": "new'--"},
            {"status": "archived"},
            {"form": "' OR 1=1 --"},
            {"form": "0" * 31},
            {"since": "yesterday"},
            {"since": "2026-03-10T12:00:00"},
            {"since": "2026-03-11", "until": "2026-03-10"},
            {"source": "s" * 2001},
            {"limit": 0},
        ],
    )
    async def test_bad_filters_are_refused(self, api: AdminApi, params: dict[str, Any]) -> None:
        response = await api.client.get(SUBMISSIONS, params=params, headers=api.headers)
        assert_error(response, 422, "validation_failed")

    async def test_page_size_is_capped_and_cursors_checked(
        self, api: AdminApi, settings: Settings
    ) -> None:
        too_big = await api.client.get(
            SUBMISSIONS, params={"limit": settings.page_size_max + 1}, headers=api.headers
        )
        assert_error(too_big, 422, "validation_failed", "limit")
        forged = await api.client.get(
            SUBMISSIONS, params={"cursor": "not-a-cursor"}, headers=api.headers
        )
        assert_error(forged, 400, "bad_request", "cursor")

    async def test_needs_the_read_scope(self, api: AdminApi) -> None:
        response = await api.client.get(SUBMISSIONS, headers=await api.key("intake:admin"))
        assert_error(response, 403, "forbidden", "intake:read")


class TestListBetaApplications:
    async def test_lists_only_beta_applications(self, api: AdminApi) -> None:
        beta, contact = await api.add_form(), await api.add_form(kind="contact")
        first = await api.add_submission(beta, created_at=DAY)
        await api.add_submission(contact, kind="contact", created_at=DAY)
        second = await api.add_submission(beta, created_at=DAY + timedelta(hours=1), status="spam")
        assert await api.ids(BETA_APPLICATIONS) == [second, first]
        assert await api.ids(BETA_APPLICATIONS, status="spam") == [second]
        assert [s["kind"] for s in await api.walk(BETA_APPLICATIONS)] == ["beta", "beta"]

    async def test_another_tenants_applications_are_never_listed(self, api: AdminApi) -> None:
        other_form = await api.add_form(tenant_id=api.other_tenant_id)
        await api.add_submission(other_form, tenant_id=api.other_tenant_id)
        assert await api.ids(BETA_APPLICATIONS) == []


class TestGetSubmission:
    async def test_answers_the_stored_submission(self, api: AdminApi) -> None:
        form = await api.add_form()
        row_id = await api.add_submission(
            form,
            created_at=DAY,
            company="Engines &amp; Co",
            source="newsletter",
            utm={"utm_source": "mail"},
            spam_reasons=["links"],
        )
        response = await api.client.get(f"{SUBMISSIONS}/{row_id}", headers=api.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == FIELDS
        assert (body["id"], body["form_id"], body["company"], body["utm"]) == (
            row_id,
            form,
            "Engines &amp; Co",
            {"utm_source": "mail"},
        )
        assert body["spam_reasons"] == ["links"]
        assert datetime.fromisoformat(body["created_at"]) == DAY

    async def test_another_tenants_submission_is_not_found(self, api: AdminApi) -> None:
        row_id = await api.add_submission(await api.add_form())
        response = await api.client.get(f"{SUBMISSIONS}/{row_id}", headers=api.other)
        assert_error(response, 404, "not_found")
        missing = await api.client.get(f"{SUBMISSIONS}/{MISSING_ID}", headers=api.headers)
        assert_error(missing, 404, "not_found")


class TestUpdateSubmission:
    @pytest.mark.parametrize("status", STATUSES)
    async def test_changes_the_status(self, api: AdminApi, status: str) -> None:
        row_id = await api.add_submission(await api.add_form(), created_at=DAY, status="reviewed")
        response = await api.client.patch(
            f"{SUBMISSIONS}/{row_id}", json={"status": status}, headers=api.headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
        stored = await api.stored(Submission, row_id)
        assert stored.status == status
        assert (stored.updated_at > DAY) is (status != "reviewed")

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"status": "archived"},
            {"status": None},
            {"status": "NEW"},
            {"status": "new", "email": "mallory@example.com"},
            {"tenant_id": "0" * 32, "status": "new"},
        ],
    )
    async def test_bad_changes_are_refused_and_nothing_changes(
        self, api: AdminApi, body: dict[str, Any]
    ) -> None:
        row_id = await api.add_submission(await api.add_form(), status="reviewed")
        response = await api.client.patch(f"{SUBMISSIONS}/{row_id}", json=body, headers=api.headers)
        assert_error(response, 422, "validation_failed")
        stored = await api.stored(Submission, row_id)
        assert (stored.status, stored.email, stored.tenant_id) == (
            "reviewed",
            "ada@example.com",
            api.tenant_id,
        )

    async def test_another_tenants_submission_is_not_found_and_unchanged(
        self, api: AdminApi
    ) -> None:
        row_id = await api.add_submission(await api.add_form())
        response = await api.client.patch(
            f"{SUBMISSIONS}/{row_id}", json={"status": "spam"}, headers=api.other
        )
        assert_error(response, 404, "not_found")
        assert (await api.stored(Submission, row_id)).status == "new"

    async def test_needs_the_admin_scope(self, api: AdminApi) -> None:
        row_id = await api.add_submission(await api.add_form())
        response = await api.client.patch(
            f"{SUBMISSIONS}/{row_id}", json={"status": "spam"}, headers=await api.key("intake:read")
        )
        assert_error(response, 403, "forbidden", "intake:admin")
        assert (await api.stored(Submission, row_id)).status == "new"
