"""The Marketing Engine end to end on the all-in-one platform: research → track the
keywords in the ASO Engine → generate a campaign → approve it → analytics shows it;
with the offline AI provider and with a local OpenAI-protocol test server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import http_model, write_catalogue
from tests.helpers import auth, issue_key, running
from tests.marketing_engine.campaigns.harness import campaign_request
from xynergy.platform.config import Settings
from xynergy.server import build_all_in_one

SCOPES = (
    "marketing:research",
    "keywords:read",
    "keywords:write",
    "content:read",
    "ai:generate",
    "ai:usage",
    "campaigns:read",
    "campaigns:write",
    "analytics:read",
)


@asynccontextmanager
async def platform_client(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    app = build_all_in_one(settings)
    async with running(app) as client:
        _, key = await issue_key(app.state.platform, tenant="acme", scopes=SCOPES)
        yield client, auth(key.secret)


async def journey(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    research = await client.post(
        "/marketing-engine/keywords/research",
        json={
            "seeds": ["trail running"],
            "description": "Running shoes shop",
            "add_to_tracked": True,
        },
        headers=headers,
    )
    assert research.status_code == 200, research.text
    added = research.json()["tracking"]["added"]
    assert added, "research tracked its suggestions"
    tracked = await client.get("/aso-engine/api/keywords", params={"limit": 200}, headers=headers)
    assert set(added) <= {item["phrase"] for item in tracked.json()["items"]}

    generated = await client.post(
        "/marketing-engine/campaigns/generate",
        json=campaign_request(business_type="ecommerce", industry="sports"),
        headers=headers,
    )
    assert generated.status_code == 201, generated.text
    campaign = generated.json()
    approved = await client.post(
        f"/marketing-engine/campaigns/{campaign['id']}/approve", headers=headers
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    analytics = await client.get("/marketing-engine/analytics/performance", headers=headers)
    assert analytics.status_code == 200, analytics.text
    report = analytics.json()
    assert report["campaigns"]["by_status"]["approved"] == 1
    assert report["sources"]["campaigns"] == "ok"
    return {"research": research.json(), "campaign": campaign, "analytics": report}


class TestJourney:
    async def test_with_the_offline_provider(self, make_settings: Callable[..., Settings]) -> None:
        async with platform_client(make_settings()) as (client, headers):
            outcome = await journey(client, headers)
        assert outcome["research"]["sources"]["ai"] == "used"  # type: ignore[index]
        assert outcome["research"]["sources"]["ai_provider"] == "offline"  # type: ignore[index]

    async def test_with_a_local_openai_protocol_server(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        async with FakeOpenAI() as upstream:
            catalogue = write_catalogue(
                tmp_path / "catalogue.json",
                providers=[{"name": "fake", "kind": "openai", "base_url": upstream.base_url}],
                models=[http_model("m", "fake")],
            )
            monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))
            async with platform_client(make_settings()) as (client, headers):
                outcome = await journey(client, headers)
                calls_after_first = upstream.calls
                again = await client.post(
                    "/marketing-engine/campaigns/generate",
                    json=campaign_request(business_type="ecommerce", industry="sports"),
                    headers=headers,
                )
        assert outcome["research"]["sources"]["ai_provider"] == "fake"  # type: ignore[index]
        assert calls_after_first >= 2, "research and the campaign both asked the upstream"
        assert again.status_code == 201
        assert upstream.calls == calls_after_first, "a repeated campaign pays for nothing"
