"""Template cache warming: what tenants use is resolved ahead, bounded, and on the runtime's schedule.

A warmed read is a cache hit that runs no statement on ``marketing_templates``;
the statements are captured from the platform's engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from dbos import DBOS
from sqlalchemy import event

from tests.helpers import auth, metric_value, scrape
from tests.marketing_engine.campaigns.harness import (
    TEMPLATES,
    MarketingApi,
    marketing_api,
    template_body,
)
from tests.system_runtime.support import harness
from xynergy.marketing_engine.models import CampaignTemplate
from xynergy.marketing_engine.templates.service import CACHE_NAMESPACE, type_tag
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.schedules import firing

REQUESTS = "xynergy_cache_requests_total"


@contextmanager
def template_reads(platform: Platform) -> Iterator[list[str]]:
    """Every statement on ``marketing_templates`` the platform's engine runs meanwhile."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "marketing_templates" in statement:
            seen.append(statement)

    sync_engine = platform.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(sync_engine, "before_cursor_execute", before)


def hits(platform: Platform, result: str = "hit") -> float:
    return metric_value(scrape(platform), REQUESTS, namespace=CACHE_NAMESPACE, result=result)


async def _store(api: MarketingApi, business_type: str, industry: str) -> None:
    payload = {"business_type": business_type, "industry": industry, "body": template_body()}
    response = await api.client.post(TEMPLATES, json=payload, headers=api.headers)
    assert response.status_code == 201, response.text


async def _forget(platform: Platform, tenant_id: str, *business_types: str) -> None:
    """Drop what the writes and generations above cached, as an expired TTL would."""
    cache = platform.cache
    await cache.invalidate(*(type_tag(cache, tenant_id, name) for name in business_types))


async def _get(api: MarketingApi, key: str, headers: dict[str, str] | None = None) -> Any:
    response = await api.client.get(f"{TEMPLATES}/{key}", headers=headers or api.headers)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


class TestWarmTemplates:
    async def test_a_cold_read_queries_templates(self, settings: Settings) -> None:
        # The control for the test below: without warming, the same read misses.
        async with marketing_api(settings) as api:
            await _store(api, "saas", "fintech")
            await _forget(api.platform, api.tenant_id, "saas")
            misses = hits(api.platform, "miss")
            with template_reads(api.platform) as reads:
                await _get(api, "saas/fintech")
            assert reads
            assert hits(api.platform, "miss") == misses + 1

    async def test_warmed_reads_and_campaigns_are_hits_that_query_nothing(
        self, settings: Settings
    ) -> None:
        async with marketing_api(settings) as api:
            await _store(api, "saas", "fintech")
            # A campaign from a built-in template: its pair is warmed too.
            await api.generated(business_type="ecommerce", industry="fashion")
            await _forget(api.platform, api.tenant_id, "saas", "ecommerce")

            await api.platform.cache.warm()  # what start-up and the runtime's schedule run

            before, misses = hits(api.platform), hits(api.platform, "miss")
            with template_reads(api.platform) as reads:
                stored = await _get(api, "saas/fintech")
                builtin = await _get(api, "ecommerce/fashion")
                await api.generated(business_type="saas", industry="fintech", name="again")
            assert (stored["source"], builtin["source"]) == ("custom", "builtin")
            assert reads == []
            assert hits(api.platform) == before + 3
            assert hits(api.platform, "miss") == misses

    async def test_warming_stops_at_the_configured_number_of_templates(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XYNERGY_MARKETING_TEMPLATE_WARM_MAX", "1")
        async with marketing_api(settings) as api:
            await _store(api, "saas", "fintech")
            await _store(api, "agency", "legal")  # the most recent: the one warmed
            await _forget(api.platform, api.tenant_id, "saas", "agency")

            await api.platform.cache.warm()

            with template_reads(api.platform) as reads:
                await _get(api, "agency/legal")
            assert reads == []
            with template_reads(api.platform) as reads:
                await _get(api, "saas/fintech")
            assert reads, "only one template may be warmed"

    async def test_zero_turns_warming_off(
        self, settings: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("XYNERGY_MARKETING_TEMPLATE_WARM_MAX", "0")
        async with marketing_api(settings) as api:
            await _store(api, "saas", "fintech")
            await api.platform.cache.warm()
            with template_reads(api.platform) as reads:
                await _get(api, "saas/fintech")
            assert reads


class TestRuntimeSchedule:
    async def test_the_runtime_warm_workflow_warms_templates(self, settings: Settings) -> None:
        async with harness(settings, scopes=("campaigns:read",)) as h:
            # Stored after start-up's warming, straight into the table: nothing cached it.
            async with unit_of_work(h.platform.sessionmaker) as session:
                session.add(
                    CampaignTemplate(
                        tenant_id=h.tenant_id,
                        business_type="saas",
                        industry="fintech",
                        version=1,
                        source="custom",
                        body=template_body(),
                        created_at=utcnow(),
                    )
                )

            handle = await asyncio.to_thread(DBOS.trigger_schedule, firing.CACHE_WARM_SCHEDULE)
            await asyncio.to_thread(handle.get_result)

            with template_reads(h.platform) as reads:
                response = await h.client.get(
                    "/marketing-engine/templates/saas/fintech", headers=auth(h.secret)
                )
            assert response.status_code == 200, response.text
            assert response.json()["source"] == "custom"
            assert reads == []
