"""The write tools (track keywords, create content, approve a campaign) end to end on
the all-in-one app with the offline provider: proposed, nothing written until the
user confirms; confirmed, they run as workflows and the owning service shows the
result; rejected, never run; out of reach of a key without their scopes; bad
arguments refused with nothing written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from tests.ai_assistant.tools_support import (
    ScriptedFake,
    action_of,
    tool_key,
    tool_rows,
    wait_finished,
)
from tests.helpers import auth, issue_key
from tests.marketing_engine.campaigns.harness import campaign_request
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.tools.actions import new_action
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work

KEYWORDS = "/aso-engine/api/keywords"
CONTENT = "/aso-engine/api/content"
CAMPAIGNS = "/marketing-engine/campaigns"
PHRASE = "trail running shoes"
TITLE = "Trail running guide"
WORKFLOWS = "workflows:write"


async def _owner(api: AssistantApi) -> dict[str, str]:
    """A key that reads and writes everything these tests look at directly."""
    scopes = ("keywords:read", "content:read", "campaigns:read", "campaigns:write")
    _, key = await issue_key(api.platform, tenant="acme", scopes=(*scopes, "ai:generate"))
    return auth(key.secret)


async def _phrases(api: AssistantApi) -> list[str]:
    response = await api.client.get(KEYWORDS, headers=await _owner(api))
    assert response.status_code == 200, response.text
    return [item["phrase"] for item in response.json()["items"]]


async def _titles(api: AssistantApi) -> list[str]:
    response = await api.client.get(CONTENT, headers=await _owner(api))
    assert response.status_code == 200, response.text
    return [item["title"] for item in response.json()["items"]]


async def _draft_campaign(api: AssistantApi) -> str:
    response = await api.client.post(
        CAMPAIGNS + "/generate", json=campaign_request(), headers=await _owner(api)
    )
    assert response.status_code == 201, response.text
    campaign_id: str = response.json()["id"]
    return campaign_id


async def _campaign_status(api: AssistantApi, campaign_id: str) -> str:
    response = await api.client.get(f"{CAMPAIGNS}/{campaign_id}", headers=await _owner(api))
    assert response.status_code == 200, response.text
    status: str = response.json()["status"]
    return status


@dataclass(frozen=True)
class Case:
    """One write tool: its scope, the message asking for it, what it writes."""

    tool: str
    scope: str

    async def message(self, api: AssistantApi) -> tuple[str, str | None]:
        """The message, and the campaign it approves (approve_campaign only)."""
        if self.tool == "track_keywords":
            return f'track the keyword "{PHRASE}"', None
        if self.tool == "create_content":
            return f'create a blog post titled "{TITLE}"', None
        campaign_id = await _draft_campaign(api)
        return f"approve campaign: {campaign_id}", campaign_id

    async def written(self, api: AssistantApi, campaign_id: str | None) -> bool:
        if self.tool == "track_keywords":
            return PHRASE in await _phrases(api)
        if self.tool == "create_content":
            return TITLE in await _titles(api)
        assert campaign_id is not None
        return await _campaign_status(api, campaign_id) == "approved"


CASES = [
    Case("track_keywords", "keywords:write"),
    Case("create_content", "content:write"),
    Case("approve_campaign", "campaigns:write"),
]
BY_TOOL = pytest.mark.parametrize("case", CASES, ids=[case.tool for case in CASES])


async def _propose(
    api: AssistantApi, case: Case, headers: dict[str, str]
) -> tuple[str, dict[str, Any], str | None]:
    text, campaign_id = await case.message(api)
    response = await api.send(text, headers=headers)
    assert response.status_code == 200, response.text
    turn = response.json()
    conversation_id: str = turn["conversation_id"]
    action = action_of((await tool_rows(api, conversation_id))[-1])
    assert action["tool"] == case.tool
    assert action["status"] == "proposed"
    assert f"Proposed action {action['id']}" in turn["reply"]["content"]
    return conversation_id, action, campaign_id


class TestProposedConfirmedRun:
    @BY_TOOL
    async def test_proposed_writes_nothing_confirmed_runs_as_a_workflow(
        self, api: AssistantApi, case: Case
    ) -> None:
        headers = await tool_key(api, case.scope, WORKFLOWS)
        conversation_id, action, campaign_id = await _propose(api, case, headers)
        assert not await case.written(api, campaign_id), "nothing is done before confirming"

        base = f"{CONVERSATIONS}/{conversation_id}/actions/{action['id']}"
        confirmed = await api.client.post(base + "/confirm", headers=headers)

        assert confirmed.status_code == 200, confirmed.text
        assert confirmed.json()["status"] == "running"
        assert confirmed.json()["workflow_id"]
        finished = await wait_finished(api, conversation_id, action["id"], headers)
        assert finished["status"] == "succeeded", finished
        assert await case.written(api, campaign_id)
        # The outcome is on the action the conversation shows.
        shown = await api.client.get(f"{CONVERSATIONS}/{conversation_id}", headers=headers)
        stored = [m for m in shown.json()["messages"] if m["id"] == action["id"]]
        assert stored[0]["tool_calls"][0]["action"]["result_summary"] == finished["result_summary"]
        if case.tool == "track_keywords":
            assert finished["result_summary"] == "Tracked 1 new keyword(s) of 1; 0 already tracked."
        elif case.tool == "create_content":
            content = await api.client.get(
                f"{CONTENT}/{finished['content_id']}", headers=await _owner(api)
            )
            assert content.status_code == 200, content.text
            assert content.json()["title"] == TITLE
            assert content.json()["status"] == "draft"
        else:
            assert finished["campaign_id"] == campaign_id
            assert finished["result_summary"] == f"Campaign {campaign_id} approved."

    @BY_TOOL
    async def test_rejected_never_runs(self, api: AssistantApi, case: Case) -> None:
        headers = await tool_key(api, case.scope, WORKFLOWS)
        conversation_id, action, campaign_id = await _propose(api, case, headers)
        base = f"{CONVERSATIONS}/{conversation_id}/actions/{action['id']}"

        rejected = await api.client.post(base + "/reject", headers=headers)

        assert rejected.status_code == 200, rejected.text
        assert rejected.json()["status"] == "rejected"
        assert (await api.client.post(base + "/confirm", headers=headers)).status_code == 409
        stored = action_of((await tool_rows(api, conversation_id))[-1])
        assert (stored["status"], stored["workflow_id"]) == ("rejected", None)
        assert not await case.written(api, campaign_id)


class TestScopes:
    @BY_TOOL
    async def test_a_key_without_the_scope_is_not_offered_the_tool(
        self, api: AssistantApi, case: Case
    ) -> None:
        headers = await tool_key(api, WORKFLOWS)  # not case.scope
        text, campaign_id = await case.message(api)

        response = await api.send(text, headers=headers)

        assert response.status_code == 200, response.text
        calls = [
            (row.tool_calls or [{}])[0]
            for row in await tool_rows(api, response.json()["conversation_id"])
        ]
        assert all(call.get("function", {}).get("name") != case.tool for call in calls), calls
        assert not await case.written(api, campaign_id)

    @BY_TOOL
    async def test_a_key_without_the_scope_cannot_confirm(
        self, api: AssistantApi, case: Case
    ) -> None:
        # A proposal stored in the conversation of a key lacking (or no longer holding)
        # the tool's scope: confirming is refused and nothing starts.
        headers = await tool_key(api, WORKFLOWS)
        _, campaign_id = await case.message(api)
        by_tool: dict[str, dict[str, Any]] = {
            "track_keywords": {"phrases": [PHRASE]},
            "create_content": {"title": TITLE},
            "approve_campaign": {"campaign_id": campaign_id},
        }
        inputs = by_tool[case.tool]
        conversation_id, action_id = await _forged(api, headers, case.tool, inputs)

        response = await api.client.post(
            f"{CONVERSATIONS}/{conversation_id}/actions/{action_id}/confirm", headers=headers
        )

        assert response.status_code == 403, response.text
        assert case.scope in response.json()["detail"]
        stored = action_of((await tool_rows(api, conversation_id))[0])
        assert (stored["status"], stored["workflow_id"]) == ("proposed", None)
        assert not await case.written(api, campaign_id)


async def _forged(
    api: AssistantApi, headers: dict[str, str], tool: str, inputs: dict[str, Any]
) -> tuple[str, str]:
    """A proposed action stored as a turn would store it, whatever its inputs."""
    conversation = await api.create(headers=headers)
    action_id = new_id()
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": tool, "arguments": json.dumps(inputs)},
        "outcome": "proposed",
        "action": new_action(action_id=action_id, tool=tool, inputs=inputs, cost=None),
    }
    async with unit_of_work(api.platform.sessionmaker) as session:
        session.add(
            Message(
                id=action_id,
                tenant_id=api.tenant_id,
                conversation_id=conversation["id"],
                seq=10,
                role="tool",
                content="Proposed.",
                tool_calls=[call],
            )
        )
    return conversation["id"], action_id


TOO_MANY: dict[str, Any] = {"phrases": [f"phrase {n}" for n in range(21)]}
TOO_LONG: dict[str, Any] = {"title": "t" * 201}


class TestBadArgumentsAtConfirm:
    async def test_stored_inputs_out_of_bounds_are_refused_and_nothing_starts(
        self, api: AssistantApi
    ) -> None:
        headers = await tool_key(api, "keywords:write", "content:write", WORKFLOWS)
        for tool, inputs in (("track_keywords", TOO_MANY), ("create_content", TOO_LONG)):
            conversation_id, action_id = await _forged(api, headers, tool, inputs)

            response = await api.client.post(
                f"{CONVERSATIONS}/{conversation_id}/actions/{action_id}/confirm", headers=headers
            )

            assert response.status_code == 422, response.text
            assert response.json()["error"] == "validation_failed"
            assert "not valid" in response.json()["detail"]
            stored = action_of((await tool_rows(api, conversation_id))[0])
            assert (stored["status"], stored["workflow_id"]) == ("proposed", None)
        assert await _phrases(api) == []
        assert await _titles(api) == []


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedFake]:
    # A model that asks for the write tools with arguments past their bounds, and
    # for the campaign approval a key without campaigns:write is not offered.
    script = [
        ("track_keywords", TOO_MANY),
        ("create_content", TOO_LONG),
        ("approve_campaign", {"campaign_id": "0" * 32}),
    ]
    async with ScriptedFake(script) as fake:
        yield fake


class TestBadArgumentsFromTheModel:
    async def test_refused_with_a_clear_result_and_nothing_written(
        self, upstream_api: AssistantApi, upstream: ScriptedFake
    ) -> None:
        api = upstream_api
        headers = await tool_key(api, "keywords:write", "content:write", WORKFLOWS)

        turn = (await api.send("track these and write a post", headers=headers)).json()

        results = await tool_rows(api, turn["conversation_id"])
        assert [row.tool_calls[0]["outcome"] for row in results if row.tool_calls] == [
            "refused"
        ] * 3
        track, content, approve = (row.content for row in results)
        assert "do not match the tool's schema" in track
        assert "do not match the tool's schema" in content
        assert "lacks the scopes ['campaigns:write']" in approve
        assert "approve_campaign" not in upstream.offered_tools()[0]
        assert {"track_keywords", "create_content"} <= upstream.offered_tools()[0]
        assert all(action_of_or_none(row) is None for row in results)
        assert await _phrases(api) == []
        assert await _titles(api) == []


def action_of_or_none(row: Message) -> dict[str, Any] | None:
    calls = row.tool_calls or []
    action = calls[0].get("action") if calls else None
    return action if isinstance(action, dict) else None
