"""Tools against a local OpenAI-protocol fake that returns tool calls: the same flow as
offline, repeated prompts served from the AI Routing Engine's cache, and permissions
asserted on what the fake was offered."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.ai_assistant.harness import CONVERSATIONS, SCOPES, AssistantApi
from tests.ai_assistant.tools_support import (
    ASK,
    CAMPAIGNS,
    READ,
    ScriptedFake,
    action_of,
    seed_trending,
    tool_key,
    tool_rows,
    wait_finished,
)
from xynergy.ai_assistant.context.tokens import prompt_tokens, text_tokens
from xynergy.ai_assistant.tools.registry import offered_to

TOP_THREE = ["trail shoes", "yoga mats", "ski wax"]


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedFake]:
    script = [
        ("trending_keywords", {"window": 7, "limit": 3}),
        ("draft_campaign", {"keywords": TOP_THREE, "channel": "search"}),
    ]
    async with ScriptedFake(script) as fake:
        yield fake


class TestWithToolCallingUpstream:
    async def test_trending_runs_campaign_confirmed_and_repeats_are_cached(
        self, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api, *CAMPAIGNS)
        await seed_trending(api)

        turn = (await api.send(ASK, headers=headers)).json()

        conversation_id = turn["conversation_id"]
        trending, proposal = await tool_rows(api, conversation_id)
        assert "yoga mats" in trending.content
        action = action_of(proposal)
        assert action["inputs"] == {"keywords": TOP_THREE, "channel": "search"}
        # Two rounds with tools, then the reply without them.
        assert [bool(names) for names in upstream.offered_tools()] == [True, True, False]
        assert "draft_campaign" in upstream.offered_tools()[0]
        base = f"{CONVERSATIONS}/{conversation_id}/actions/{action['id']}"
        assert (await api.client.post(base + "/confirm", headers=headers)).status_code == 200
        finished = await wait_finished(api, conversation_id, action["id"], headers)
        assert finished["status"] == "succeeded", finished
        assert finished["campaign_id"]

        # The same question again: both tool rounds are the prompts seen before, answered
        # from the cache; only the reply (after a new action id) reaches the fake.
        before = upstream.calls
        again = (await api.send(ASK, headers=headers)).json()
        assert upstream.calls == before + 1
        assert len(await tool_rows(api, again["conversation_id"])) == 2


class TestPermissions:
    async def test_campaign_tool_never_offered_and_refused_without_the_scope(
        self, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api)  # no campaigns:write, no workflows:write

        turn = (await api.send(ASK, headers=headers)).json()

        offered = upstream.offered_tools()
        assert all("draft_campaign" not in names for names in offered)
        assert "trending_keywords" in offered[0]
        trending, asked_anyway = await tool_rows(api, turn["conversation_id"])
        assert trending.tool_calls
        assert trending.tool_calls[0]["outcome"] == "ran"
        assert asked_anyway.tool_calls
        assert asked_anyway.tool_calls[0]["outcome"] == "refused"
        assert "lacks the scopes" in asked_anyway.content
        assert "action" not in asked_anyway.tool_calls[0]
        assert "Proposed action" not in turn["reply"]["content"]


class TestContextBudgetWithTools:
    @pytest.fixture
    def tight_budget(self, monkeypatch: pytest.MonkeyPatch) -> int:
        budget = 900  # the definitions of the key's tools take about 750 tokens of it
        monkeypatch.setenv("XYNERGY_ASSISTANT_CONTEXT_BUDGET_TOKENS", str(budget))
        monkeypatch.setenv("XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS", "200")
        monkeypatch.setenv("XYNERGY_ASSISTANT_SUMMARY_MAX_TOKENS", "16")
        return budget

    async def test_no_prompt_goes_over_the_budget_results_are_cut(
        self, tight_budget: int, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api, *CAMPAIGNS)
        await seed_trending(api)

        turn = (await api.send(ASK, headers=headers)).json()

        assert turn["reply"]["status"] == "complete"
        for body in upstream.requests:
            sent = [
                (m["role"], (m.get("content") or "") + json.dumps(m.get("tool_calls") or ""))
                for m in body["messages"]
            ]
            tools = text_tokens(json.dumps(body.get("tools") or [], separators=(",", ":")))
            assert prompt_tokens(sent) + (tools if body.get("tools") else 0) <= tight_budget
        trending = (await tool_rows(api, turn["conversation_id"]))[0]
        assert "[Result truncated:" in trending.content

    @pytest.fixture
    def tiny_budget(self, monkeypatch: pytest.MonkeyPatch) -> int:
        # The message and the system prompt fit; the key's ~750 tokens of tool
        # definitions do not.
        budget = 400
        monkeypatch.setenv("XYNERGY_ASSISTANT_CONTEXT_BUDGET_TOKENS", str(budget))
        monkeypatch.setenv("XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS", "200")
        monkeypatch.setenv("XYNERGY_ASSISTANT_SUMMARY_MAX_TOKENS", "16")
        return budget

    async def test_a_budget_smaller_than_the_tool_definitions_offers_fewer_tools(
        self, tiny_budget: int, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        headers = await tool_key(upstream_api, *CAMPAIGNS)

        turn = (await upstream_api.send(ASK, headers=headers)).json()

        assert turn["reply"]["status"] == "complete", turn
        first = upstream.requests[0]
        sent = [(m["role"], m.get("content") or "") for m in first["messages"]]
        offered = first.get("tools") or []
        tools = text_tokens(json.dumps(offered, separators=(",", ":"))) if offered else 0
        assert prompt_tokens(sent) + tools <= tiny_budget
        assert tools > 0, "the tools that fit are still offered"
        assert len(offered) < len(offered_to(frozenset((*SCOPES, *READ, *CAMPAIGNS))))
