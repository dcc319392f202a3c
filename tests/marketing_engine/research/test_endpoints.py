"""POST /marketing-engine/keywords/research against the whole platform (real SQLite)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import http_model, write_catalogue
from tests.helpers import metric_value, scrape
from tests.marketing_engine.research.conftest import CONTENT, KEYWORDS

pytestmark = pytest.mark.asyncio

Opener = Callable[..., Any]


def phrases(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["phrase"]: item for item in body["items"]}


def use_fake_openai(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, upstream: FakeOpenAI) -> None:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "alpha")],
    )
    monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))


class TestResearchOffline:
    async def test_owned_and_ai_suggestions_with_their_methods(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            await p.track(headers, "Yoga Mat", "yoga classes online", "accounting software")
            piece = {"title": "Yoga at home", "author": "a", "target_keywords": ["home yoga"]}
            assert (await p.client.post(CONTENT, json=piece, headers=headers)).status_code == 201

            answer = await p.research(headers, seeds=["  Yoga "], description="A yoga studio.")

            assert answer.status_code == 200, answer.text
            body = answer.json()
            found = phrases(body)
            assert body["seeds"] == ["yoga"]
            assert body["cached"] is False
            assert body["sources"]["ai"] == "used"
            assert body["sources"]["ai_provider"] == "offline"
            assert body["sources"]["tracked_keywords"] == 3
            assert body["sources"]["content_pieces"] == 1
            assert found["yoga mat"]["source"] == "owned"
            assert found["yoga mat"]["tracked"] is True
            assert found["home yoga"]["tracked"] is False
            assert "owned" in found["home yoga"]["origins"]
            assert found["yoga"]["source"] == "seed"
            assert any(item["source"] == "ai" for item in body["items"])
            assert "accounting software" not in found
            for item in body["items"]:
                assert 0 <= item["difficulty"] <= 100
                assert 0 <= item["demand"] <= 100
                assert item["difficulty_method"]
                assert item["demand_method"]
                assert item["intent"] in {
                    "informational",
                    "commercial",
                    "transactional",
                    "navigational",
                }
                assert item["cluster"] in found
            assert body["clustering_method"].startswith("lexical")

    async def test_identical_normalised_request_is_served_from_the_cache(
        self, open_platform: Opener
    ) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            first = await p.research(headers, seeds=["yoga", "Pilates"], limit=20)
            again = await p.research(headers, seeds=[" pilates", "YOGA"], limit=20)
            assert first.json()["cached"] is False
            assert again.json()["cached"] is True
            assert again.json()["items"] == first.json()["items"]

    async def test_another_tenants_keywords_never_appear(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            other = await p.headers(tenant="globex")
            await p.track(other, "yoga secret plan")
            mine = await p.headers(tenant="acme")
            body = (await p.research(mine, seeds=["yoga"])).json()
            assert "yoga secret plan" not in phrases(body)
            assert body["sources"]["tracked_keywords"] == 0


class TestResearchWithOpenAiUpstream:
    async def test_upstream_called_once_then_cached(
        self, open_platform: Opener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            use_fake_openai(monkeypatch, tmp_path, upstream)
            async with open_platform() as p:
                headers = await p.headers()
                first = await p.research(headers, seeds=["yoga mats", "meditation"])
                assert first.status_code == 200, first.text
                assert first.json()["sources"]["ai"] == "used"
                assert upstream.calls == 1
                prompt = json.dumps(upstream.requests[-1])
                assert "yoga mats" in prompt
                again = await p.research(headers, seeds=["Meditation", "yoga mats"])
                assert again.json()["cached"] is True
                assert upstream.calls == 1

    async def test_failing_upstream_still_answers_from_owned_data_uncached(
        self, open_platform: Opener, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.fail_next(1000, status=500)
            use_fake_openai(monkeypatch, tmp_path, upstream)
            async with open_platform() as p:
                headers = await p.headers()
                await p.track(headers, "yoga mat")
                answer = await p.research(headers, seeds=["yoga"])
                assert answer.status_code == 200, answer.text
                body = answer.json()
                assert body["sources"]["ai"] == "unavailable"
                assert {i["source"] for i in body["items"]} <= {"owned", "seed", "trending"}
                assert "yoga mat" in phrases(body)
                # A degraded answer is not cached: the next call computes again.
                again = (await p.research(headers, seeds=["yoga"])).json()
                assert again["cached"] is False


class TestAddToTracked:
    async def test_adds_chosen_suggestions_in_the_aso_engine(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            await p.track(headers, "yoga mat")
            answer = await p.research(
                headers, seeds=["yoga"], add_to_tracked=["yoga", "Yoga Mat", "yoga retreat"]
            )
            assert answer.status_code == 200, answer.text
            tracking = answer.json()["tracking"]
            assert tracking["added"] == ["yoga", "yoga retreat"]
            assert tracking["already_tracked"] == ["yoga mat"]
            assert phrases(answer.json())["yoga"]["tracked"] is True
            listed = await p.client.get(KEYWORDS, headers=headers)
            tracked = {k["phrase"]: k for k in listed.json()["items"]}
            assert set(tracked) == {"yoga", "yoga mat", "yoga retreat"}
            assert tracked["yoga retreat"]["tags"] == ["marketing-research"]
            # One bulk import for all of them (the setup's own keyword was one POST).
            metrics = scrape(p.platform)
            assert (
                metric_value(
                    metrics,
                    "xynergy_http_requests_total",
                    service="aso-engine",
                    route="/api/keywords/bulk-import",
                )
                == 1
            )
            assert (
                metric_value(
                    metrics,
                    "xynergy_http_requests_total",
                    service="aso-engine",
                    method="POST",
                    route="/api/keywords",
                )
                == 1
            )

    async def test_true_adds_every_untracked_suggestion(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            answer = await p.research(headers, seeds=["yoga"], limit=5, add_to_tracked=True)
            items = answer.json()["items"]
            assert len(answer.json()["tracking"]["added"]) == len(items) == 5
            listed = (await p.client.get(KEYWORDS, headers=headers)).json()["items"]
            assert {k["phrase"] for k in listed} == {i["phrase"] for i in items}

    async def test_without_keywords_write_is_403_and_nothing_written(
        self, open_platform: Opener
    ) -> None:
        async with open_platform() as p:
            scopes = ("marketing:research", "keywords:read", "ai:generate")
            headers = await p.headers(scopes=scopes)
            refused = await p.research(headers, seeds=["yoga"], add_to_tracked=True)
            assert refused.status_code == 403
            assert "keywords:write" in refused.json()["detail"]
            listed = await p.client.get(KEYWORDS, headers=await p.headers())
            assert listed.json()["items"] == []


class TestResearchRefusals:
    async def test_missing_dependency_scope_is_403_up_front(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            headers = await p.headers(scopes=("marketing:research",))
            refused = await p.research(headers, seeds=["yoga"])
            assert refused.status_code == 403
            assert "ai:generate" in refused.json()["detail"]

    async def test_eleven_seeds_is_422(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            refused = await p.research(headers, seeds=[f"topic {i}" for i in range(11)])
            assert refused.status_code == 422
            assert "at most 10 seed topics" in refused.json()["detail"]

    async def test_oversized_description_is_422_and_nothing_written(
        self, open_platform: Opener
    ) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            refused = await p.research(
                headers, seeds=["yoga"], description="x" * 2001, add_to_tracked=True
            )
            assert refused.status_code == 422
            assert "description" in refused.json()["detail"]
            listed = await p.client.get(KEYWORDS, headers=headers)
            assert listed.json()["items"] == []

    async def test_limit_over_the_bound_is_422(self, open_platform: Opener) -> None:
        async with open_platform() as p:
            refused = await p.research(await p.headers(), seeds=["yoga"], limit=201)
            assert refused.status_code == 422
            assert "limit must be at most 200" in refused.json()["detail"]

    async def test_eleventh_call_within_an_hour_is_429_with_retry_after(
        self, open_platform: Opener
    ) -> None:
        async with open_platform() as p:
            headers = await p.headers()
            for i in range(10):
                ok = await p.research(headers, seeds=["yoga" if i % 2 else "pilates"])
                assert ok.status_code == 200, ok.text
            limited = await p.research(headers, seeds=["yoga"])
            assert limited.status_code == 429
            assert int(limited.headers["Retry-After"]) > 0


@pytest.mark.redis
class TestResearchWithRedis:
    async def test_cached_and_rate_limited_through_redis(
        self, open_platform: Opener, redis_url: str, redis_prefix: str
    ) -> None:
        async with open_platform(redis_url=redis_url, redis_key_prefix=redis_prefix) as p:
            headers = await p.headers()
            first = await p.research(headers, seeds=["yoga"])
            again = await p.research(headers, seeds=["Yoga"])
            assert first.json()["cached"] is False
            assert again.json()["cached"] is True
            for _ in range(8):
                assert (await p.research(headers, seeds=["yoga"])).status_code == 200
            assert (await p.research(headers, seeds=["yoga"])).status_code == 429
