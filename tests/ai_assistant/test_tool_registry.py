"""The tool table: offered by scope, valid schemas, and the offline provider's choices."""

from __future__ import annotations

import jsonschema_rs

from tests.ai_assistant.tools_support import ASK
from xynergy.ai_assistant.tools.registry import TOOLS, offered
from xynergy.ai_routing.providers.base import (
    ChatMessage,
    ToolCall,
    Tools,
    ToolSpec,
    UpstreamRequest,
)
from xynergy.ai_routing.providers.offline_tools import choose_tool_call
from xynergy.platform.auth.context import AuthContext


def _caller(*scopes: str) -> AuthContext:
    return AuthContext(tenant_id="t", key_id="k", key_tenant_id="t", scopes=frozenset(scopes))


class TestOffered:
    def test_only_tools_whose_scopes_the_key_holds(self) -> None:
        names = {tool.name for tool in offered(_caller("keywords:read", "ai:generate"))}
        assert names == {"trending_keywords", "list_keywords"}
        assert offered(_caller()) == ()

    def test_enabled_list_narrows_further(self) -> None:
        everything = _caller(*{scope for tool in TOOLS for scope in tool.scopes})
        assert [t.name for t in offered(everything, ["intake_stats"])] == ["intake_stats"]
        assert len(offered(everything)) == len(TOOLS)

    def test_every_schema_is_a_valid_object_schema(self) -> None:
        for tool in TOOLS:
            assert tool.parameters["type"] == "object"
            assert jsonschema_rs.meta.is_valid(tool.parameters), tool.name


class TestOfflineChoices:
    def test_trending_first_then_the_campaign(self) -> None:
        # (After a proposal the assistant asks without tools: the user decides first.)
        specs = tuple(ToolSpec(t.name, t.description, t.parameters) for t in TOOLS)
        messages: tuple[ChatMessage, ...] = (ChatMessage("user", ASK),)
        chosen = []
        for _ in range(2):
            call = choose_tool_call(
                UpstreamRequest(model="m", messages=messages, max_tokens=10, tools=Tools(specs))
            )
            assert call is not None
            chosen.append(call.name)
            messages += (
                ChatMessage("assistant", "", tool_calls=(ToolCall(call.id, call.name, "{}"),)),
                ChatMessage("tool", "{}", tool_call_id=call.id),
            )
        assert chosen == ["trending_keywords", "draft_campaign"]
