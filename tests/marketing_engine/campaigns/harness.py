"""The whole platform running in process, with keys for two tenants, over the marketing API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from xynergy.marketing_engine.models import Campaign, CampaignStep, CampaignTemplate
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

BASE = "/marketing-engine"
CAMPAIGNS = BASE + "/campaigns"
GENERATE = CAMPAIGNS + "/generate"
TEMPLATES = BASE + "/templates"
SCOPES = ("campaigns:read", "campaigns:write", "templates:write", "ai:generate")
_MAX_PAGES = 200


def campaign_request(**fields: Any) -> dict[str, Any]:
    """A valid generation request (a built-in business type), with ``fields`` changed."""
    body: dict[str, Any] = {
        "business_type": "saas",
        "industry": "fintech",
        "goals": ["Grow trials", "Lift conversion"],
        "channels": ["email", "search"],
        "audience": "Finance teams at small companies",
        "tone": "confident",
        "starts_on": "2027-01-01",
        "ends_on": "2027-01-30",
        "budget": "10000.00",
    }
    body.update(fields)
    return body


def template_body(summary: str = "Our own SaaS playbook") -> dict[str, Any]:
    return {
        "summary": summary,
        "key_messages": ["Set up in a day"],
        "default_tactics": ["Webinar"],
        "channel_tactics": {"email": ["Weekly digest"]},
        "utm_medium": {"email": "newsletter"},
        "phases": [{"name": "Only", "share_percent": 100}],
    }


@dataclass
class MarketingApi:
    """``headers`` act for tenant acme, ``other`` for tenant globex."""

    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]
    other_tenant_id: str
    other: dict[str, str]

    async def generate(
        self, headers: dict[str, str] | None = None, **fields: Any
    ) -> httpx.Response:
        return await self.client.post(
            GENERATE, json=campaign_request(**fields), headers=headers or self.headers
        )

    async def generated(self, headers: dict[str, str] | None = None, **fields: Any) -> Any:
        response = await self.generate(headers, **fields)
        assert response.status_code == 201, response.text
        return response.json()

    async def action(
        self, campaign_id: str, action: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"{CAMPAIGNS}/{campaign_id}/{action}", headers=headers or self.headers
        )

    async def list_all(
        self, path: str = CAMPAIGNS, headers: dict[str, str] | None = None, **params: Any
    ) -> list[Any]:
        """Every item of a list, walked two at a time."""
        items: list[Any] = []
        query: dict[str, Any] = {"limit": 2, **params}
        for _ in range(_MAX_PAGES):
            response = await self.client.get(path, params=query, headers=headers or self.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert len(page["items"]) <= 2
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]
        pytest.fail("pagination did not terminate")

    async def rows(self, model: type[Any], **where: Any) -> int:
        """Rows of ``model`` in the database matching ``where`` (all tenants), by SQL COUNT."""
        query = select(func.count()).select_from(model).filter_by(**where)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def campaign_rows(self) -> int:
        return await self.rows(Campaign)

    async def step_rows(self) -> int:
        return await self.rows(CampaignStep)

    async def template_rows(self, **where: Any) -> int:
        return await self.rows(CampaignTemplate, **where)


@asynccontextmanager
async def marketing_api(
    settings: Settings, scopes: tuple[str, ...] = SCOPES
) -> AsyncIterator[MarketingApi]:
    """Every service in one process (the Marketing Engine under ``/marketing-engine``)."""
    app = build_all_in_one(settings)
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant="acme", scopes=scopes)
        other_id, other = await issue_key(platform, tenant="globex", scopes=scopes)
        yield MarketingApi(
            client, platform, tenant_id, auth(issued.secret), other_id, auth(other.secret)
        )
