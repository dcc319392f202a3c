"""Proposed actions say what they may cost: the workflow's expected AI tokens at the
catalogue's highest prices, as the AI Routing Engine lists them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from tests.ai_assistant.tools_support import CAMPAIGNS, ScriptedFake, tool_key

KEYWORDS = ["trail shoes", "yoga mats"]
# The fake catalogue's model "m" costs 1 and 2 USD per million tokens (the offline
# model, also listed, nothing); generate-campaign is expected to use 1,000 prompt and
# 1,200 completion tokens: 0.001 + 0.0024.
EXPECTED = "0.003400"


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedFake]:
    async with ScriptedFake([("draft_campaign", {"keywords": KEYWORDS})]) as fake:
        yield fake


@pytest.fixture
def no_expected_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set before the app starts (it reads its settings once)."""
    monkeypatch.setenv("XYNERGY_ASSISTANT_ACTION_AI_TOKENS", "{}")


def _events(body: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in body.splitlines()
        if line.startswith("data: {")
    ]


class TestProposalEstimate:
    async def test_the_proposal_event_and_the_action_carry_the_estimate(
        self, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api, *CAMPAIGNS)

        response = await api.send("draft a campaign for my shoes", headers=headers, stream=True)

        assert response.status_code == 200, response.text
        events = _events(response.text)
        proposed = [e for e in events if e.get("type") == "action_proposed"]
        assert len(proposed) == 1
        action = proposed[0]["action"]
        assert action["estimated_cost_usd"] == EXPECTED
        assert "generate-campaign" in action["estimated_cost_basis"]
        # The reply's text says it too, and the stored action reads back the same.
        turn = next(e for e in events if e.get("object") == "assistant.turn")
        assert f"at most {EXPECTED} USD" in turn["reply"]["content"]
        read = await api.client.get(
            f"{CONVERSATIONS}/{turn['conversation_id']}/actions/{action['id']}", headers=headers
        )
        assert read.status_code == 200, read.text
        assert read.json()["estimated_cost_usd"] == EXPECTED

    async def test_a_definition_without_expected_tokens_has_no_estimate(
        self, no_expected_tokens: None, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api, *CAMPAIGNS)

        response = await api.send("draft a campaign for my shoes", headers=headers, stream=True)

        proposed = [e for e in _events(response.text) if e.get("type") == "action_proposed"]
        assert proposed[0]["action"]["estimated_cost_usd"] is None
        assert proposed[0]["action"]["estimated_cost_basis"] is None
