"""Actions: who may read, confirm or reject one, and what a refusal leaves behind."""

from __future__ import annotations

import json

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from tests.ai_assistant.tools_support import ASK, CAMPAIGNS, action_of, tool_key, tool_rows
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.tools.actions import new_action
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work


async def _proposed(api: AssistantApi, headers: dict[str, str]) -> tuple[str, str]:
    turn = (await api.send(ASK, headers=headers)).json()
    conversation_id = turn["conversation_id"]
    return conversation_id, action_of((await tool_rows(api, conversation_id))[-1])["id"]


class TestIsolation:
    async def test_another_tenant_or_key_gets_404_everywhere(self, api: AssistantApi) -> None:
        owner = await tool_key(api, *CAMPAIGNS)
        conversation_id, action_id = await _proposed(api, owner)
        base = f"{CONVERSATIONS}/{conversation_id}/actions/{action_id}"
        strangers = [
            await tool_key(api, *CAMPAIGNS, tenant="globex"),
            await tool_key(api, *CAMPAIGNS),  # same tenant, another key
        ]
        for headers in strangers:
            assert (await api.client.get(base, headers=headers)).status_code == 404
            for verb in ("confirm", "reject"):
                response = await api.client.post(f"{base}/{verb}", headers=headers)
                assert response.status_code == 404
                assert response.json()["error"] == "not_found"
        assert (await api.client.get(base, headers=owner)).json()["status"] == "proposed"

    async def test_unknown_action_and_a_plain_message_are_404(self, api: AssistantApi) -> None:
        owner = await tool_key(api, *CAMPAIGNS)
        conversation_id, _ = await _proposed(api, owner)
        trending = (await tool_rows(api, conversation_id))[0]  # a tool result, no action
        for action_id in (new_id(), trending.id):
            response = await api.client.post(
                f"{CONVERSATIONS}/{conversation_id}/actions/{action_id}/confirm", headers=owner
            )
            assert response.status_code == 404


class TestConfirmNeedsTheScopes:
    async def test_a_key_without_campaigns_write_cannot_confirm(self, api: AssistantApi) -> None:
        # A proposal stored in the conversation of a key that does not (or no longer)
        # hold campaigns:write: confirming is refused and nothing starts.
        headers = await tool_key(api, "workflows:write")
        conversation = await api.create(headers=headers)
        action_id = new_id()
        inputs = {"keywords": ["trail shoes"]}
        call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "draft_campaign", "arguments": json.dumps(inputs)},
            "outcome": "proposed",
            "action": new_action(
                action_id=action_id, tool="draft_campaign", inputs=inputs, cost=None
            ),
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

        response = await api.client.post(
            f"{CONVERSATIONS}/{conversation['id']}/actions/{action_id}/confirm", headers=headers
        )

        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        stored = action_of((await tool_rows(api, conversation["id"]))[0])
        assert stored["status"] == "proposed"
        assert stored["workflow_id"] is None
