"""Tools end to end on the all-in-one app with the offline provider: a read runs in
the turn, a write is proposed, confirmed, runs as a workflow and shows its campaign."""

from __future__ import annotations

import json
from typing import Any

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from tests.ai_assistant.tools_support import (
    ASK,
    CAMPAIGNS,
    action_of,
    ledger_tasks,
    rows,
    seed_trending,
    tool_key,
    tool_rows,
    wait_finished,
)


def _events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


class TestTrendingThenCampaign:
    async def test_read_runs_write_is_proposed_confirmed_and_runs(self, api: AssistantApi) -> None:
        headers = await tool_key(api, *CAMPAIGNS)
        await seed_trending(api)

        response = await api.send(ASK, headers=headers)

        assert response.status_code == 200, response.text
        turn = response.json()
        conversation_id = turn["conversation_id"]
        trending, proposal = await tool_rows(api, conversation_id)
        assert trending.tool_calls
        assert trending.tool_calls[0]["function"]["name"] == ("trending_keywords")
        assert trending.tool_calls[0]["outcome"] == "ran"
        assert "trail shoes" in trending.content  # the ASO Engine's answer, fed back
        action = action_of(proposal)
        assert action["tool"] == "draft_campaign"
        assert action["status"] == "proposed"
        assert f"Proposed action {action['id']}" in turn["reply"]["content"]
        assert "has not run" in turn["reply"]["content"]

        confirmed = await api.client.post(
            f"{CONVERSATIONS}/{conversation_id}/actions/{action['id']}/confirm", headers=headers
        )
        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "running"
        assert confirmed.json()["workflow_id"]

        finished = await wait_finished(api, conversation_id, action["id"], headers)
        assert finished["status"] == "succeeded", finished
        campaign_id = finished["campaign_id"]
        assert campaign_id
        campaign = await api.client.get(
            f"/marketing-engine/campaigns/{campaign_id}", headers=headers
        )
        assert campaign.status_code == 200, campaign.text
        shown = await api.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=headers)
        stored = [
            m for m in shown.json()["messages"] if m["role"] == "tool" and m["id"] == action["id"]
        ]
        assert stored[0]["tool_calls"][0]["action"]["campaign_id"] == campaign_id
        # Every model call of the turn (three: two tool rounds and the reply) is in the
        # ledger under the assistant's task, and so is the campaign's own AI call.
        tasks = await ledger_tasks(api, at_least=4)
        assert tasks.count("assistant") == 3
        assert "chat" not in tasks

    async def test_confirm_twice_conflicts_and_reject_never_runs(self, api: AssistantApi) -> None:
        headers = await tool_key(api, *CAMPAIGNS)
        turn = (await api.send(ASK, headers=headers)).json()
        conversation_id = turn["conversation_id"]
        action = action_of((await tool_rows(api, conversation_id))[-1])
        base = f"{CONVERSATIONS}/{conversation_id}/actions/{action['id']}"

        rejected = await api.client.post(base + "/reject", headers=headers)
        assert rejected.status_code == 200
        assert rejected.json()["status"] == "rejected"
        again = await api.client.post(base + "/confirm", headers=headers)
        assert again.status_code == 409
        assert action_of((await tool_rows(api, conversation_id))[-1])["workflow_id"] is None


class TestStreamedTools:
    async def test_tool_calls_results_and_proposals_are_events(self, api: AssistantApi) -> None:
        headers = await tool_key(api, *CAMPAIGNS)

        response = await api.send(ASK, headers=headers, stream=True)

        assert response.status_code == 200
        events = _events(response.text)
        tool_events = [e for e in events if e.get("object") == "assistant.tool"]
        kinds = [(e["type"], e.get("name")) for e in tool_events]
        assert kinds == [
            ("tool_call", "trending_keywords"),
            ("tool_result", "trending_keywords"),
            ("tool_call", "draft_campaign"),
            ("tool_result", "draft_campaign"),
            ("action_proposed", None),
        ]
        final = events[-1]
        assert final["object"] == "assistant.turn"
        streamed = "".join(
            e["choices"][0]["delta"].get("content", "")
            for e in events
            if e.get("object") == "chat.completion.chunk"
        )
        action = tool_events[-1]["action"]
        stored = await rows(api, final["conversation_id"])
        assert any(row.id == action["id"] for row in stored)
        # The text of every round is streamed, and stored on that round's message.
        said = "".join(row.content for row in stored if row.role == "assistant")
        assert streamed == said
        assert streamed.endswith(final["reply"]["content"])


class TestLaterTurns:
    async def test_a_conversation_with_tool_rows_goes_on(self, api: AssistantApi) -> None:
        headers = await tool_key(api, *CAMPAIGNS)
        first = (await api.send(ASK, headers=headers)).json()

        response = await api.send("thanks", first["conversation_id"], headers=headers)

        assert response.status_code == 200, response.text
        assert response.json()["reply"]["status"] == "complete"
        # No tool matched: one more user message and reply, no tool rows.
        assert len(await tool_rows(api, first["conversation_id"])) == 2


class TestLedgerTask:
    async def test_a_key_cannot_relabel_its_own_spend(self, api: AssistantApi) -> None:
        response = await api.client.post(
            "/ai-routing-engine/v1/chat/completions",
            json={"model": "xynergy-offline", "messages": [{"role": "user", "content": "hi"}]},
            headers={**api.headers, "X-Xynergy-Task": "assistant"},
        )

        assert response.status_code == 200, response.text
        assert await ledger_tasks(api, at_least=1) == ["chat"]
