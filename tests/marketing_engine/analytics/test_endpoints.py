"""GET /marketing-engine/analytics/performance, against the whole platform in one process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.helpers import auth, issue_key, metric_value, running, scrape
from xynergy.ai_routing.app import SLUG as AI_ENGINE
from xynergy.marketing_engine.models import Campaign
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.server import SERVICES, build_all_in_one

pytestmark = pytest.mark.asyncio

URL = "/marketing-engine/analytics/performance"
ALL_SCOPES = (
    "analytics:read",
    "content:read",
    "content:write",
    "keywords:read",
    "keywords:write",
    "ai:generate",
    "ai:usage",
)
CACHE_HITS = {"namespace": "marketing-analytics", "result": "hit"}
CACHE_MISSES = {"namespace": "marketing-analytics", "result": "miss"}


def today() -> date:
    return datetime.now(UTC).date()


@dataclass
class Tenant:
    id: str
    headers: dict[str, str]


@dataclass
class Platformed:
    root: Starlette
    client: httpx.AsyncClient
    platform: Platform

    async def tenant(self, name: str, scopes: Sequence[str] = ALL_SCOPES) -> Tenant:
        tenant_id, key = await issue_key(self.platform, tenant=name, scopes=scopes)
        return Tenant(tenant_id, auth(key.secret))

    async def analytics(self, tenant: Tenant, **params: Any) -> httpx.Response:
        return await self.client.get(URL, params=params, headers=tenant.headers)

    async def add_content(self, tenant: Tenant, status: str) -> None:
        body = {"title": f"A {status} piece", "author": "tests", "status": status}
        response = await self.client.post(
            "/aso-engine/api/content", json=body, headers=tenant.headers
        )
        assert response.status_code == 201, response.text

    async def add_keyword_moves(self, tenant: Tenant, moves: dict[str, tuple[int, int]]) -> None:
        """Per phrase, a position five days ago and one today."""
        observations = []
        for phrase, (before, now) in moves.items():
            created = await self.client.post(
                "/aso-engine/api/keywords",
                json={"phrase": phrase, "locale": "en-US"},
                headers=tenant.headers,
            )
            assert created.status_code == 201, created.text
            keyword_id = created.json()["id"]
            for days_ago, position in ((5, before), (0, now)):
                observed_on = (today() - timedelta(days=days_ago)).isoformat()
                observations.append(
                    {
                        "keyword_id": keyword_id,
                        "engine": "google",
                        "locale": "en-US",
                        "position": position,
                        "observed_on": observed_on,
                    }
                )
        recorded = await self.client.post(
            "/aso-engine/api/rankings",
            json={"observations": observations},
            headers=tenant.headers,
        )
        assert recorded.status_code == 200, recorded.text

    async def add_campaign(
        self, tenant: Tenant, status: str, *, updated_at: datetime | None = None
    ) -> None:
        # Directly through the ORM: the campaigns API is built separately.
        now = datetime.now(UTC)
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(
                Campaign(
                    tenant_id=tenant.id,
                    status=status,
                    name="Spring launch",
                    business_type="bakery",
                    industry="food",
                    goals=["awareness"],
                    channels=["email"],
                    audience="locals",
                    tone="warm",
                    starts_on=today(),
                    ends_on=today() + timedelta(days=30),
                    budget=Decimal("1000.00"),
                    request_hash="0" * 64,
                    plan={},
                    estimated_reach=4000,
                    created_at=updated_at or now,
                    updated_at=updated_at or now,
                )
            )

    async def use_ai(self, tenant: Tenant, prompts: Sequence[str]) -> None:
        for prompt in prompts:
            response = await self.client.post(
                "/ai-routing-engine/api/generate/intelligent",
                json={"task": "keywords", "prompt": prompt, "max_tokens": 50},
                headers=tenant.headers,
            )
            assert response.status_code == 200, response.text
        await self.mounted(AI_ENGINE).state.ai.ledger.flush()

    def mounted(self, slug: str) -> Any:
        for route in self.root.routes:
            if isinstance(route, Mount) and route.path == f"/{slug}":
                return route.app
        raise LookupError(slug)

    async def metric(self, **labels: str) -> float:
        text = scrape(self.root.state.platform)
        return metric_value(text, "xynergy_cache_requests_total", **labels)


@asynccontextmanager
async def platform(
    settings: Settings, services: dict[str, Any] | None = None
) -> AsyncIterator[Platformed]:
    root = build_all_in_one(settings, services)
    async with running(root) as client:
        yield Platformed(root, client, root.state.platform)


class TestFullAnswer:
    async def test_every_source_is_counted_for_the_tenant_only(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with platform(make_settings(database_url=database_url)) as xyn:
            acme, globex = await xyn.tenant("acme"), await xyn.tenant("globex")
            for status in ("draft", "draft", "published"):
                await xyn.add_content(acme, status)
            await xyn.add_content(globex, "draft")
            await xyn.add_keyword_moves(acme, {"rye bread": (20, 3), "sourdough": (4, 9)})
            await xyn.add_campaign(acme, "draft")
            await xyn.add_campaign(acme, "active")
            await xyn.add_campaign(acme, "active", updated_at=datetime.now(UTC) - timedelta(90))
            await xyn.add_campaign(globex, "active")
            await xyn.use_ai(acme, ["ideas for a bakery", "ideas for a bakery"])

            response = await xyn.analytics(acme)
            other = (await xyn.analytics(globex)).json()

        assert response.status_code == 200, response.text
        report = response.json()
        assert report["window_days"] == 30
        assert report["until"] == today().isoformat()
        assert report["sources"] == dict.fromkeys(("content", "keywords", "campaigns", "ai"), "ok")
        assert report["partial"] is False
        assert report["failures"] == {}
        assert report["content"]["by_status"] == {
            "draft": 2,
            "review": 0,
            "scheduled": 0,
            "published": 1,
            "archived": 0,
        }
        keywords = report["keywords"]
        assert (keywords["improved"], keywords["declined"]) == (1, 1)
        assert [m["phrase"] for m in keywords["top_movers"]] == ["rye bread", "sourdough"]
        assert [m["change"] for m in keywords["top_movers"]] == [17, -5]
        # The 90-day-old campaign is outside the 30-day window.
        assert report["campaigns"]["by_status"] == {
            "draft": 1,
            "approved": 0,
            "active": 1,
            "completed": 0,
            "archived": 0,
        }
        ai = report["ai"]
        assert (ai["requests"], ai["cache_hits"], ai["cache_hit_rate"]) == (2, 1, 0.5)
        assert ai["tokens"] > 0
        assert Decimal(ai["cost_usd"]) >= 0

        assert other["content"]["by_status"]["draft"] == 1
        assert other["campaigns"]["by_status"]["active"] == 1
        assert other["keywords"]["improved"] == 0
        assert other["ai"]["requests"] == 0
        assert other["ai"]["cache_hit_rate"] is None

    async def test_a_longer_window_counts_older_campaigns(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with platform(make_settings()) as xyn:
            acme = await xyn.tenant("acme")
            await xyn.add_campaign(acme, "completed", updated_at=datetime.now(UTC) - timedelta(60))
            short = (await xyn.analytics(acme, window=30)).json()
            # The ASO Engine trends over 7 or 30 days: 90 uses its closest window.
            wide = (await xyn.analytics(acme, window=90)).json()
        assert short["campaigns"]["by_status"]["completed"] == 0
        assert wide["campaigns"]["by_status"]["completed"] == 1
        # Keyword movement comes from the ASO Engine's closest window (30 days).
        assert wide["sources"]["keywords"] == "ok"
        assert wide["keywords"]["window_days"] == 30
        assert short["keywords"]["window_days"] == 30
        assert wide["partial"] is False


class TestAccess:
    async def test_no_key_is_401(self, make_settings: Callable[..., Settings]) -> None:
        async with platform(make_settings()) as xyn:
            response = await xyn.client.get(URL)
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"

    async def test_a_key_without_analytics_read_is_403(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with platform(make_settings()) as xyn:
            acme = await xyn.tenant("acme", scopes=[s for s in ALL_SCOPES if s != "analytics:read"])
            response = await xyn.analytics(acme)
        assert response.status_code == 403
        assert "analytics:read" in response.json()["detail"]

    async def test_sections_the_key_may_not_read_are_forbidden_not_fetched(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with platform(make_settings()) as xyn:
            acme = await xyn.tenant("acme", scopes=["analytics:read", "ai:usage"])
            await xyn.add_campaign(acme, "draft")
            response = await xyn.analytics(acme)
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["sources"] == {
            "content": "forbidden",
            "keywords": "forbidden",
            "campaigns": "ok",
            "ai": "ok",
        }
        assert "content:read" in report["failures"]["content"]
        assert report["content"] is None
        assert report["keywords"] is None
        assert report["campaigns"]["by_status"]["draft"] == 1
        assert report["partial"] is True

    async def test_keys_with_different_scopes_never_share_a_cached_answer(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with platform(make_settings()) as xyn:
            full = await xyn.tenant("acme")
            narrow = await xyn.tenant("acme", scopes=["analytics:read"])
            await xyn.analytics(full)
            report = (await xyn.analytics(narrow)).json()
        assert report["ai"] is None
        assert report["sources"]["ai"] == "forbidden"


class TestWindow:
    @pytest.mark.parametrize("window", [0, 367])
    async def test_out_of_range_is_422(
        self, make_settings: Callable[..., Settings], window: int
    ) -> None:
        async with platform(make_settings()) as xyn:
            acme = await xyn.tenant("acme")
            response = await xyn.analytics(acme, window=window)
        assert response.status_code == 422
        assert response.json()["error"] == "validation_failed"


class TestPartial:
    async def test_ai_engine_down_gives_a_partial_answer_naming_it(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        without_ai = {slug: factory for slug, factory in SERVICES.items() if slug != AI_ENGINE}
        async with platform(make_settings(), without_ai) as xyn:
            acme = await xyn.tenant("acme")
            await xyn.add_content(acme, "review")
            first = await xyn.analytics(acme)
            second = await xyn.analytics(acme)
            hits = await xyn.metric(**CACHE_HITS)
        assert first.status_code == 200, first.text
        report = first.json()
        assert report["sources"]["ai"] == "unavailable"
        assert AI_ENGINE in report["failures"]["ai"]
        assert report["ai"] is None
        assert report["partial"] is True
        assert report["content"]["by_status"]["review"] == 1
        assert report["sources"]["campaigns"] == "ok"
        # A partial answer from an outage is not cached: the next call tries again.
        assert second.status_code == 200
        assert hits == 0

    async def test_ai_engine_unreachable_over_the_network_is_unavailable(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # A closed port: connection refused, a network failure rather than a 4xx.
        settings = make_settings(service_urls={AI_ENGINE: "http://127.0.0.1:9"})
        async with platform(settings) as xyn:
            acme = await xyn.tenant("acme")
            response = await xyn.analytics(acme)
        assert response.status_code == 200, response.text
        assert response.json()["sources"]["ai"] == "unavailable"
        assert response.json()["sources"]["content"] == "ok"


class TestCache:
    async def test_a_second_call_is_served_from_the_cache(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with platform(make_settings()) as xyn:
            acme = await xyn.tenant("acme")
            await xyn.add_campaign(acme, "draft")
            first = (await xyn.analytics(acme)).json()
            await xyn.add_campaign(acme, "draft")
            second = (await xyn.analytics(acme)).json()
            hits, misses = await xyn.metric(**CACHE_HITS), await xyn.metric(**CACHE_MISSES)
            other_window = (await xyn.analytics(acme, window=7)).json()
        assert (hits, misses) == (1, 1)
        assert second == first, "served as computed, generated_at included"
        assert other_window["campaigns"]["by_status"]["draft"] == 2
