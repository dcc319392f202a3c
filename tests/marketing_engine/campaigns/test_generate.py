"""Campaign generation end to end: offline provider, a local OpenAI-protocol upstream, bounds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.helpers import auth, issue_key
from tests.marketing_engine.campaigns.harness import (
    CAMPAIGNS,
    GENERATE,
    MarketingApi,
    campaign_request,
)
from xynergy.marketing_engine.config import MarketingSettings

BOUNDS = MarketingSettings()
STEPS = ["template", "personalise", "channel_plan", "schedule", "utm_tags", "estimated_reach"]


def _reach(budget: str, channels: list[str]) -> int:
    share = float(budget) / len(channels)
    return sum(int(share / 1000 * BOUNDS.reach_per_1000_budget[c]) for c in channels)


class TestGenerateOffline:
    async def test_generates_a_draft_with_every_step_stored(self, api: MarketingApi) -> None:
        response = await api.generate()
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "draft"
        assert [step["name"] for step in body["steps"]] == STEPS
        assert not any(step["reused"] for step in body["steps"])
        plan = body["plan"]
        assert plan["template"] == {
            "id": "builtin:saas:generic",
            "business_type": "saas",
            "industry": "generic",
            "version": 1,
            "source": "builtin",
        }
        assert plan["key_messages"], "the offline provider's personalisation is kept"
        assert set(plan["channels"]) == {"email", "search"}
        assert plan["utm"]["search"] == {
            "utm_source": "search",
            "utm_medium": "cpc",
            "utm_campaign": "saas-fintech-campaign-2027-01-01",
        }
        schedule = plan["schedule"]
        assert schedule["days"] == 30
        assert schedule["phases"][0]["starts_on"] == "2027-01-01"
        assert schedule["phases"][-1]["ends_on"] == "2027-01-30"
        assert sum(phase["days"] for phase in schedule["phases"]) == 30
        assert body["estimated_reach"] == _reach("10000", ["email", "search"])
        assert await api.campaign_rows() == 1
        assert await api.step_rows() == len(STEPS)

    async def test_end_to_end_generate_get_approve_activate(self, api: MarketingApi) -> None:
        created = await api.generated()
        fetched = await api.client.get(f"{CAMPAIGNS}/{created['id']}", headers=api.headers)
        assert fetched.status_code == 200
        assert fetched.json() == created
        for action, status in (("approve", "approved"), ("activate", "active")):
            moved = await api.action(created["id"], action)
            assert moved.status_code == 200, moved.text
            assert moved.json()["status"] == status
        final = await api.client.get(f"{CAMPAIGNS}/{created['id']}", headers=api.headers)
        assert final.json()["status"] == "active"

    async def test_a_repeated_request_reuses_every_step(self, api: MarketingApi) -> None:
        first = await api.generated()
        second = await api.generated()
        assert second["id"] != first["id"]
        assert all(step["reused"] for step in second["steps"])
        assert second["plan"] == first["plan"]

    async def test_a_changed_budget_reuses_the_ai_step_only_recomputes_reach(
        self, api: MarketingApi
    ) -> None:
        await api.generated()
        second = await api.generated(budget="20000.00")
        reused = {step["name"]: step["reused"] for step in second["steps"]}
        assert reused["personalise"] is True
        assert reused["estimated_reach"] is False
        assert second["estimated_reach"] == _reach("20000", ["email", "search"])

    async def test_an_unknown_business_type_gets_an_ai_drafted_template(
        self, api: MarketingApi
    ) -> None:
        body = await api.generated(business_type="bakery", industry="food")
        assert body["plan"]["template"]["source"] == "ai"
        assert body["plan"]["template"]["version"] == 1
        assert await api.template_rows(source="ai", tenant_id=api.tenant_id) == 1

    async def test_a_key_without_ai_generate_is_refused_up_front(self, api: MarketingApi) -> None:
        _, issued = await issue_key(
            api.platform, tenant="acme", scopes=("campaigns:read", "campaigns:write")
        )
        response = await api.generate(auth(issued.secret))
        assert response.status_code == 403
        assert "ai:generate" in response.json()["detail"]
        assert await api.campaign_rows() == 0


class TestGenerateWithUpstream:
    async def test_second_identical_request_makes_no_upstream_call(
        self, upstream_api: MarketingApi, upstream: FakeOpenAI
    ) -> None:
        first = await upstream_api.generated()
        assert upstream.calls == 1
        assert upstream.requests[-1]["messages"][-1]["content"].startswith("Personalise")
        assert first["steps"][1]["output"]["provider"] == "fake"
        second = await upstream_api.generated()
        assert upstream.calls == 1, "the step cache answered; the upstream was not paid again"
        assert all(step["reused"] for step in second["steps"])
        assert await upstream_api.campaign_rows() == 2

    async def test_a_failing_upstream_answers_503_and_stores_nothing(
        self, upstream_api: MarketingApi, upstream: FakeOpenAI
    ) -> None:
        upstream.fail_next(100, status=500)
        response = await upstream_api.generate()
        assert response.status_code == 503, response.text
        assert response.json()["error"] in {"upstream_unavailable", "circuit_open"}
        assert response.json()["detail"]
        assert upstream.calls >= 1
        assert await upstream_api.campaign_rows() == 0
        assert await upstream_api.step_rows() == 0

    async def test_a_retry_after_the_outage_succeeds(
        self, upstream_api: MarketingApi, upstream: FakeOpenAI
    ) -> None:
        upstream.fail_next(1, status=500)
        failed = await upstream_api.generate()
        assert failed.status_code == 503
        retried = await upstream_api.generated()
        assert retried["status"] == "draft"
        assert await upstream_api.campaign_rows() == 1


# Each case: the changed fields and a phrase the 422 detail must contain.
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"goals": [f"goal {n}" for n in range(BOUNDS.goals_max + 1)]}, "at most 10 goals"),
    ({"goals": []}, "goals"),
    ({"goals": ["g" * (BOUNDS.goal_max_chars + 1)]}, "goals.0"),
    ({"audience": "a" * (BOUNDS.audience_max_chars + 1)}, "audience"),
    ({"channels": ["email", "carrier-pigeon"]}, "unknown channel"),
    ({"channels": [f"c{n}" for n in range(BOUNDS.channels_max + 1)]}, "channels"),
    ({"ends_on": "2026-12-31"}, "cannot end before it starts"),
    ({"ends_on": "2029-01-01"}, f"at most {BOUNDS.campaign_days_max} days"),
    ({"budget": str(int(BOUNDS.budget_max) + 1)}, "budget"),
    ({"budget": "-1"}, "budget"),
    ({"tone": "t" * (BOUNDS.text_field_max_chars + 1)}, "tone"),
    ({"business_type": "Not A Slug!"}, "business_type"),
    ({"surprise": True}, "surprise"),
]
REFUSED_IDS = [
    "11-goals",
    "no-goals",
    "long-goal",
    "long-audience",
    "unknown-channel",
    "too-many-channels",
    "end-before-start",
    "too-long",
    "budget-over",
    "budget-negative",
    "long-tone",
    "bad-business-type",
    "unknown-field",
]


class TestGenerateBounds:
    @pytest.mark.parametrize(("fields", "phrase"), REFUSED, ids=REFUSED_IDS)
    async def test_refused_with_422_and_nothing_written(
        self, api: MarketingApi, fields: dict[str, Any], phrase: str
    ) -> None:
        response = await api.client.post(
            GENERATE, json=campaign_request(**fields), headers=api.headers
        )
        assert response.status_code == 422, response.text
        assert phrase in response.text
        assert await api.campaign_rows() == 0
        assert await api.step_rows() == 0
        assert await api.template_rows() == 0

    async def test_at_the_limits_is_accepted(self, api: MarketingApi) -> None:
        body = await api.generated(
            goals=[f"goal {n}" for n in range(BOUNDS.goals_max)],
            audience="a" * BOUNDS.audience_max_chars,
            channels=list(BOUNDS.channels),
            budget=str(int(BOUNDS.budget_max)),
        )
        assert len(body["goals"]) == BOUNDS.goals_max
        assert set(body["plan"]["utm"]) == set(BOUNDS.channels)
