"""Every built-in definition is valid, and runs to success against the real services
(all-in-one, offline AI provider), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.helpers import auth, issue_key, running
from tests.marketing_engine.campaigns.harness import campaign_request
from xynergy.platform.config import Settings
from xynergy.server import build_all_in_one
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.builtins import BUILT_IN_DEFINITIONS
from xynergy.system_runtime.definitions.spec import check_definition

RUNS = "/system-runtime/api/workflows"
WORKFLOWS = ("workflows:read", "workflows:write")
_ENDED = ("succeeded", "failed", "cancelled")


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str]

    async def start(self, definition: str, values: dict[str, Any]) -> str:
        answer = await self.client.post(
            f"{RUNS}/start", json={"definition": definition, "input": values}, headers=self.headers
        )
        assert answer.status_code == 202, answer.text
        run_id: str = answer.json()["id"]
        return run_id

    async def until(self, run_id: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        for _ in range(400):
            detail: dict[str, Any] = (
                await self.client.get(f"{RUNS}/{run_id}", headers=self.headers)
            ).json()
            if done(detail):
                return detail
            await asyncio.sleep(0.05)
        raise AssertionError(f"run {run_id} never got there: {detail}")

    async def finished(self, run_id: str) -> dict[str, Any]:
        return await self.until(run_id, lambda detail: detail["status"] in _ENDED)


def outputs(detail: dict[str, Any]) -> dict[str, Any]:
    return {step["id"]: json.loads(step["output_summary"] or "null") for step in detail["steps"]}


@asynccontextmanager
async def platform(settings: Settings, scopes: tuple[str, ...]) -> AsyncIterator[Api]:
    app = build_all_in_one(settings)
    async with running(app) as client:
        _, key = await issue_key(app.state.platform, tenant="acme", scopes=(*WORKFLOWS, *scopes))
        yield Api(client, auth(key.secret))


@pytest.fixture(autouse=True)
def whole_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step outputs shown whole, so the test reads them from the run's detail."""
    monkeypatch.setenv("XYNERGY_RUNTIME_OUTPUT_SUMMARY_MAX_CHARS", "100000")


def test_every_built_in_passes_check_definition() -> None:
    assert {
        "campaign-from-research",
        "keyword-rankings-report",
        "track-keywords",
        "create-content",
        "approve-campaign",
    } <= set(BUILT_IN_DEFINITIONS)
    for spec in BUILT_IN_DEFINITIONS.values():
        check_definition(spec, catalogue=BUILT_IN_OPERATIONS, settings=RuntimeSettings())


async def test_campaign_from_research_waits_for_approval_then_activates(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    scopes = (
        "marketing:research",
        "keywords:read",
        "keywords:write",
        "ai:generate",
        "campaigns:read",
        "campaigns:write",
    )
    async with platform(make_settings(database_url=database_url), scopes) as api:
        run_id = await api.start(
            "campaign-from-research",
            {
                "seeds": ["trail running"],
                "locale": "en-US",
                "track": ["trail running shoes"],
                "campaign": campaign_request(business_type="ecommerce", industry="sports"),
            },
        )
        waiting = await api.until(
            run_id, lambda d: d["status"] == "waiting" or d["status"] in _ENDED
        )
        assert waiting["status"] == "waiting", waiting
        signal = await api.client.post(
            f"{RUNS}/{run_id}/signal",
            json={"step_id": "approval", "decision": "approve"},
            headers=api.headers,
        )
        assert signal.status_code == 200, signal.text
        detail = await api.finished(run_id)
        assert detail["status"] == "succeeded", detail
        found = outputs(detail)
        assert found["research"]["items"], "research suggested keywords"
        assert found["research"]["tracking"] is None, "research alone tracks nothing"
        assert found["track"]["tracking"]["added"] == ["trail running shoes"]
        campaign_id = found["campaign"]["id"]
        assert found["activate"]["status"] == "active"
        campaign = await api.client.get(
            f"/marketing-engine/campaigns/{campaign_id}", headers=api.headers
        )
        assert campaign.json()["status"] == "active"
        tracked = await api.client.get(
            "/aso-engine/api/keywords", params={"q": "trail running shoes"}, headers=api.headers
        )
        assert [k["phrase"] for k in tracked.json()["items"]] == ["trail running shoes"]


async def test_keyword_rankings_report_imports_records_and_reports(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    async with platform(
        make_settings(database_url=database_url), ("keywords:read", "keywords:write")
    ) as api:
        created = await api.client.post(
            "/aso-engine/api/keywords",
            json={"phrase": "yoga mats", "locale": "en-US"},
            headers=api.headers,
        )
        keyword_id = created.json()["id"]
        today = datetime.now(UTC).date()

        def seen(days_ago: int, position: int) -> dict[str, Any]:
            return {
                "keyword_id": keyword_id,
                "engine": "google",
                "locale": "en-US",
                "position": position,
                "observed_on": (today - timedelta(days=days_ago)).isoformat(),
            }

        run_id = await api.start(
            "keyword-rankings-report",
            {
                "keywords": [
                    {"phrase": "yoga blocks", "locale": "en-US", "tags": ["props"]},
                    {"phrase": "yoga mats", "locale": "en-US"},
                ],
                "observations": [seen(3, 9), seen(0, 2)],
                "window": 7,
            },
        )
        detail = await api.finished(run_id)
        assert detail["status"] == "succeeded", detail
        found = outputs(detail)
        assert (found["import"]["inserted"], found["import"]["duplicates_existing"]) == (1, 1)
        assert found["rankings"] == {"recorded": 2}
        [moved] = found["trending"]["items"]
        assert (moved["keyword_id"], moved["change"]) == (keyword_id, 7)


async def test_trending_report_reads_every_performance_section(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    scopes = ("keywords:read", "analytics:read", "content:read", "ai:usage")
    async with platform(make_settings(database_url=database_url), scopes) as api:
        run_id = await api.start("trending-report", {"window": 30})
        detail = await api.finished(run_id)
        assert detail["status"] == "succeeded", detail
        found = outputs(detail)
        assert found["trending"]["window"] == 30
        # The step's token carries only the operation's scopes: with one missing,
        # its section would say "forbidden".
        assert set(found["performance"]["sources"].values()) == {"ok"}
