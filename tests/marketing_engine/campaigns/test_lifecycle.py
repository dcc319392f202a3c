"""The campaign life cycle over HTTP: allowed moves, refused moves (409), isolation."""

from __future__ import annotations

import pytest

from tests.marketing_engine.campaigns.harness import CAMPAIGNS, MarketingApi
from xynergy.marketing_engine.campaigns.lifecycle import next_status
from xynergy.platform.exceptions import Conflict

MISSING_ID = "0" * 32


class TestTransitions:
    async def test_full_life_cycle_to_completed_then_archived(self, api: MarketingApi) -> None:
        campaign = await api.generated()
        statuses = []
        for action in ("approve", "activate", "complete", "archive"):
            response = await api.action(campaign["id"], action)
            assert response.status_code == 200, response.text
            statuses.append(response.json()["status"])
        assert statuses == ["approved", "active", "completed", "archived"]

    @pytest.mark.parametrize(
        ("moves", "refused"),
        [
            ([], "activate"),
            ([], "complete"),
            (["approve"], "approve"),
            (["approve"], "complete"),
            (["approve", "activate"], "approve"),
            (["archive"], "archive"),
            (["archive"], "approve"),
        ],
        ids=[
            "activate-draft",
            "complete-draft",
            "approve-twice",
            "complete-approved",
            "approve-active",
            "archive-twice",
            "approve-archived",
        ],
    )
    async def test_invalid_transition_is_409_and_changes_nothing(
        self, api: MarketingApi, moves: list[str], refused: str
    ) -> None:
        campaign = await api.generated()
        for action in moves:
            assert (await api.action(campaign["id"], action)).status_code == 200
        before = (await api.client.get(f"{CAMPAIGNS}/{campaign['id']}", headers=api.headers)).json()
        response = await api.action(campaign["id"], refused)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "conflict"
        assert f"Cannot {refused}" in response.json()["detail"]
        after = (await api.client.get(f"{CAMPAIGNS}/{campaign['id']}", headers=api.headers)).json()
        assert after == before

    def test_rules_are_in_one_place(self) -> None:
        assert next_status("draft", "approve") == "approved"
        with pytest.raises(Conflict):
            next_status("completed", "activate")


class TestIsolation:
    async def test_another_tenants_campaign_is_404_everywhere(self, api: MarketingApi) -> None:
        theirs = await api.generated(headers=api.other)
        for action in ("approve", "activate", "complete", "archive"):
            response = await api.action(theirs["id"], action)
            assert response.status_code == 404
        response = await api.client.get(f"{CAMPAIGNS}/{theirs['id']}", headers=api.headers)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert await api.list_all() == []
        assert [c["id"] for c in await api.list_all(headers=api.other)] == [theirs["id"]]
        unchanged = await api.client.get(f"{CAMPAIGNS}/{theirs['id']}", headers=api.other)
        assert unchanged.json()["status"] == "draft"

    async def test_step_cache_is_per_tenant(self, api: MarketingApi) -> None:
        await api.generated()
        theirs = await api.generated(headers=api.other)
        assert not any(step["reused"] for step in theirs["steps"])

    async def test_unknown_and_malformed_ids(self, api: MarketingApi) -> None:
        missing = await api.client.get(f"{CAMPAIGNS}/{MISSING_ID}", headers=api.headers)
        assert missing.status_code == 404
        malformed = await api.client.get(f"{CAMPAIGNS}/not-an-id", headers=api.headers)
        assert malformed.status_code == 422
