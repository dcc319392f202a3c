"""GET /api/stats: one GROUP BY per breakdown, tenant-scoped, windowed, cached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest

from tests.helpers import metric_value
from tests.intelligence_gateway.submissions.test_admin_support import (
    STATS,
    SUBMISSIONS,
    AdminApi,
    admin_api,
    assert_error,
    statements,
)
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.submissions.stats import CACHE_NAMESPACE
from xynergy.platform.config import Settings

DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
WINDOW: dict[str, Any] = {"since": "2026-03-01", "until": "2026-03-31"}
BREAKDOWNS = 4


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[AdminApi]:
    async with admin_api(settings) as started:
        yield started


async def stats(api: AdminApi, headers: dict[str, str] | None = None, **params: Any) -> Any:
    response = await api.client.get(STATS, params=params, headers=headers or api.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"since", "until", "total", "by_kind", "by_status", "by_source", "by_day"}
    return body


def hits(api: AdminApi) -> float:
    text = generate_latest(api.platform.metrics.registry).decode()
    return metric_value(
        text, "xynergy_cache_requests_total", namespace=CACHE_NAMESPACE, result="hit"
    )


class TestStats:
    async def test_counts_by_kind_status_source_and_day(self, api: AdminApi) -> None:
        beta, contact = await api.add_form(), await api.add_form(kind="contact")
        await api.add_submission(beta, created_at=DAY, source="newsletter")
        await api.add_submission(beta, created_at=DAY, source="newsletter", status="spam")
        await api.add_submission(beta, created_at=DAY + timedelta(days=1), source="ads")
        await api.add_submission(contact, kind="contact", created_at=DAY, status="accepted")
        # Outside the window, on both sides of it (its bounds are whole UTC days).
        await api.add_submission(beta, created_at=datetime(2026, 2, 28, 23, 59, tzinfo=UTC))
        await api.add_submission(beta, created_at=datetime(2026, 4, 1, 0, 0, tzinfo=UTC))
        body = await stats(api, **WINDOW)
        assert body == {
            "since": "2026-03-01",
            "until": "2026-03-31",
            "total": 4,
            "by_kind": {"beta": 3, "contact": 1},
            "by_status": {"accepted": 1, "new": 2, "spam": 1},
            "by_source": {"newsletter": 2, "": 1, "ads": 1},
            "by_day": [{"day": "2026-03-10", "count": 3}, {"day": "2026-03-11", "count": 1}],
        }

    async def test_the_window_bounds_are_inclusive_whole_days(self, api: AdminApi) -> None:
        form = await api.add_form()
        await api.add_submission(form, created_at=datetime(2026, 3, 1, 0, 0, tzinfo=UTC))
        await api.add_submission(form, created_at=datetime(2026, 3, 31, 23, 59, 59, tzinfo=UTC))
        body = await stats(api, **WINDOW)
        assert body["total"] == 2
        assert [d["day"] for d in body["by_day"]] == ["2026-03-01", "2026-03-31"]

    async def test_the_default_window_ends_today(self, api: AdminApi) -> None:
        form = await api.add_form()
        await api.add_submission(form)
        body = await stats(api)
        today = datetime.now(UTC).date()
        assert body["until"] == today.isoformat()
        span = today - date.fromisoformat(body["since"])
        assert span == timedelta(days=IntakeSettings().stats_max_days - 1)
        assert body["total"] == 1

    async def test_sources_are_the_most_frequent_first_and_bounded(self, api: AdminApi) -> None:
        form = await api.add_form()
        for source, times in [("ads", 1), ("blog", 3), ("newsletter", 2)]:
            for _ in range(times):
                await api.add_submission(form, created_at=DAY, source=source)
        body = await stats(api, sources=2, **WINDOW)
        assert list(body["by_source"].items()) == [("blog", 3), ("newsletter", 2)]
        assert body["total"] == 6

    async def test_another_tenants_rows_are_never_counted(self, api: AdminApi) -> None:
        await api.add_submission(await api.add_form(), created_at=DAY)
        other_form = await api.add_form(tenant_id=api.other_tenant_id)
        for _ in range(3):
            await api.add_submission(other_form, tenant_id=api.other_tenant_id, created_at=DAY)
        assert (await stats(api, **WINDOW))["total"] == 1
        assert (await stats(api, headers=api.other, **WINDOW))["total"] == 3

    async def test_one_statement_per_breakdown_then_the_cache(self, api: AdminApi) -> None:
        form = await api.add_form()
        await api.add_submission(form, created_at=DAY)
        with statements(api.platform.engine, "intake_submissions") as seen:
            first = await stats(api, **WINDOW)
        assert len(seen) == BREAKDOWNS
        assert all("GROUP BY" in statement and "count(" in statement for statement in seen)
        cached_hits = hits(api)
        await api.add_submission(form, created_at=DAY)
        with statements(api.platform.engine, "intake_submissions") as seen:
            assert await stats(api, **WINDOW) == first
        assert seen == []
        assert hits(api) == cached_hits + 1

    async def test_a_status_change_refreshes_the_cached_counts(self, api: AdminApi) -> None:
        row_id = await api.add_submission(await api.add_form(), created_at=DAY)
        assert (await stats(api, **WINDOW))["by_status"] == {"new": 1}
        response = await api.client.patch(
            f"{SUBMISSIONS}/{row_id}", json={"status": "spam"}, headers=api.headers
        )
        assert response.status_code == 200, response.text
        assert (await stats(api, **WINDOW))["by_status"] == {"spam": 1}

    @pytest.mark.parametrize(
        "params",
        [
            {"since": "2026-03-31", "until": "2026-03-01"},
            {"since": "2024-01-01", "until": "2026-01-01"},
            {"since": "2026-03-01T10:30:00Z"},
            {"since": "' OR 1=1 --"},
            {"until": "9999-12-31"},
            {"sources": 0},
            {"sources": 10_000},
        ],
    )
    async def test_bad_windows_are_refused(self, api: AdminApi, params: dict[str, Any]) -> None:
        response = await api.client.get(STATS, params=params, headers=api.headers)
        assert_error(response, 422, "validation_failed")

    async def test_needs_the_read_scope(self, api: AdminApi) -> None:
        response = await api.client.get(STATS, headers=await api.key("intake:admin"))
        assert_error(response, 403, "forbidden", "intake:read")
