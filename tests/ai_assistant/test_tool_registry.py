"""The tool table: offered by scope, valid schemas, and the offline provider's choices."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, cast

import jsonschema_rs

from tests.ai_assistant.tools_support import ASK
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.messages.rounds import ToolPlan, plan_tools
from xynergy.ai_assistant.tools.registry import TOOLS, offered
from xynergy.ai_routing.providers.base import (
    ChatMessage,
    ToolCall,
    Tools,
    ToolSpec,
    UpstreamRequest,
)
from xynergy.ai_routing.providers.offline_tools import choose_tool_call
from xynergy.aso_engine.content.schemas import ContentCreate
from xynergy.aso_engine.keywords.schemas import KeywordCreate
from xynergy.platform.auth.context import AuthContext
from xynergy.system_runtime.definitions.builtins import BUILT_IN_DEFINITIONS


def _caller(*scopes: str) -> AuthContext:
    return AuthContext(tenant_id="t", key_id="k", key_tenant_id="t", scopes=frozenset(scopes))


def _plan(caller: AuthContext, **settings: Any) -> ToolPlan:
    # plan_tools reads only the turn's caller and settings.
    turn = SimpleNamespace(caller=caller, settings=AssistantSettings(**settings))
    return plan_tools(cast(Any, turn))


class TestToolPlan:
    def test_made_once_per_tool_scope_combination(self) -> None:
        reader = _plan(_caller("keywords:read", "ai:generate", "assistant:chat"))
        # Another key, other scopes no tool needs: the same plan, not a new one.
        same = _plan(_caller("keywords:read", "ai:generate", "campaigns:read"))
        assert same is reader
        assert set(reader.by_name) == {"trending_keywords", "list_keywords"}
        assert [spec["function"]["name"] for spec in reader.specs] == list(reader.by_name)
        assert reader.tokens > 0

    def test_follows_the_scopes_and_the_settings(self) -> None:
        everything = _caller(*{scope for tool in TOOLS for scope in tool.scopes})
        assert set(_plan(everything).by_name) == {tool.name for tool in TOOLS}
        assert set(_plan(_caller("admin")).by_name) == {tool.name for tool in TOOLS}
        assert (
            _plan(everything, tools_enabled=("intake_stats",)).specs[0]["function"]["name"]
            == "intake_stats"
        )
        assert _plan(everything, tool_calls_per_turn_max=0).specs == []
        assert _plan(_caller("assistant:chat")).by_name == {}


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

    def _first_call(self, text: str) -> ToolCall:
        specs = tuple(ToolSpec(t.name, t.description, t.parameters) for t in TOOLS)
        call = choose_tool_call(
            UpstreamRequest(
                model="m", messages=(ChatMessage("user", text),), max_tokens=10, tools=Tools(specs)
            )
        )
        assert call is not None
        return call

    def test_the_write_tools_are_chosen_by_their_words(self) -> None:
        campaign_id = "0123456789abcdef0123456789abcdef"
        cases = {
            'track the keyword "trail running shoes"': (
                "track_keywords",
                {"phrases": ["trail running shoes"]},
            ),
            'create a blog post titled "Trail running guide"': (
                "create_content",
                {"title": "Trail running guide"},
            ),
            f"approve campaign: {campaign_id}": ("approve_campaign", {"campaign_id": campaign_id}),
        }
        for text, (name, arguments) in cases.items():
            call = self._first_call(text)
            assert (call.name, json.loads(call.arguments)) == (name, arguments), text
            tool = next(tool for tool in TOOLS if tool.name == name)
            assert jsonschema_rs.is_valid(tool.parameters, arguments)


class TestWriteToolSchemas:
    """The write tools' schemas refuse what the owning service would refuse."""

    def _tool(self, name: str) -> Any:
        return next(tool for tool in TOOLS if tool.name == name)

    def test_scopes_are_the_operations_and_workflows_write(self) -> None:
        assert self._tool("track_keywords").scopes == {"keywords:write", "workflows:write"}
        assert self._tool("create_content").scopes == {"content:write", "workflows:write"}
        assert self._tool("approve_campaign").scopes == {"campaigns:write", "workflows:write"}
        assert all(self._tool(n).writes for n in WRITES)

    def test_bounds(self) -> None:
        track = self._tool("track_keywords").parameters
        assert jsonschema_rs.is_valid(track, {"phrases": ["a"] * 20, "locale": "es-419"})
        bad: dict[str, Any]
        for bad in (
            {"phrases": ["a"] * 21},
            {"phrases": []},
            {"phrases": ["  "]},
            {"phrases": ["x" * 201]},
            {"phrases": ["a\x01b"]},
            {"phrases": ["a"], "locale": "english"},
            {"phrases": ["a"], "tags": ["t"] * 21},
        ):
            assert not jsonschema_rs.is_valid(track, bad), bad
        content = self._tool("create_content").parameters
        assert jsonschema_rs.is_valid(content, {"title": "t" * 200, "body": "a\nb"})
        for bad in (
            {"title": "t" * 201},
            {"title": "t", "author": "a" * 41},
            {"title": " "},
            {"title": "t", "body": "b" * 10_001},
            {"title": "t", "status": "live"},
            {"title": "t", "target_keywords": ["k"] * 51},
            {"body": "no title"},
        ):
            assert not jsonschema_rs.is_valid(content, bad), bad
        approve = self._tool("approve_campaign").parameters
        assert not jsonschema_rs.is_valid(approve, {"campaign_id": "approve campaign 12"})

    def test_the_workflow_starts_name_the_built_ins(self) -> None:
        starts = {
            "track_keywords": {"phrases": ["trail shoes"], "tags": ["spring"]},
            "create_content": {"title": "Guide"},
            "approve_campaign": {"campaign_id": "0" * 32},
        }
        for name, arguments in starts.items():
            start = self._tool(name).workflow_start
            assert start is not None
            assert start(arguments)["definition"] in BUILT_IN_DEFINITIONS
        track = self._tool("track_keywords").workflow_start(starts["track_keywords"])
        assert track["input"]["rows"] == [
            {"phrase": "trail shoes", "locale": "en-US", "tags": ["spring"]}
        ]
        content = self._tool("create_content").workflow_start(starts["create_content"])
        assert content["input"]["content"]["author"] == "AI Assistant"
        assert content["input"]["content"]["status"] == "draft"

    def test_the_largest_arguments_pass_the_services_schemas(self) -> None:
        # At every bound of the tools' schemas, with the characters escaping lengthens
        # most: what a tool accepts, the ASO Engine's create bodies accept too.
        tool = self._tool("create_content")
        bound = {name: prop.get("maxLength") for name, prop in _properties(tool).items()}
        keywords = _properties(tool)["target_keywords"]
        arguments: dict[str, Any] = {
            "title": "&" * bound["title"],
            "body": "<" * bound["body"],
            "author": "&" * bound["author"],
            "target_keywords": ["k" * keywords["items"]["maxLength"]] * keywords["maxItems"],
            "status": "published",
        }
        assert jsonschema_rs.is_valid(tool.parameters, arguments)
        ContentCreate.model_validate(tool.workflow_start(arguments)["input"]["content"])
        tool = self._tool("track_keywords")
        phrases, tags = _properties(tool)["phrases"], _properties(tool)["tags"]
        arguments = {
            "phrases": ["p" * phrases["items"]["maxLength"]] * phrases["maxItems"],
            "locale": "zh-Hant-TW",
            "tags": ["t" * tags["items"]["maxLength"]] * tags["maxItems"],
        }
        assert jsonschema_rs.is_valid(tool.parameters, arguments)
        for row in tool.workflow_start(arguments)["input"]["rows"]:
            KeywordCreate.model_validate(row)


def _properties(tool: Any) -> dict[str, Any]:
    properties: dict[str, Any] = tool.parameters["properties"]
    return properties


WRITES = ("track_keywords", "create_content", "approve_campaign")
