"""Tool use the gateway cannot honour is refused: a 422 in OpenAI's error shape,
and nothing reaches the provider, the budget or the ledger."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import gateway, http_model, write_catalogue
from tests.ai_routing.tools import GET_WEATHER, SEARCH_KEYWORDS, TOOLS, answered, ask
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def _tool(name: str = "search_keywords", **function: Any) -> dict[str, Any]:
    tool = copy.deepcopy(SEARCH_KEYWORDS)
    tool["function"].update(name=name, **function)
    return tool


def _unanswered_then_user() -> list[dict[str, Any]]:
    conversation = answered("call_1", "search_keywords", "{}")
    return [*conversation[:2], {"role": "user", "content": "never mind"}]


REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "choice names an unknown tool": (
        {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
        "'nope', which is not in tools",
    ),
    "choice without tools": ({"tool_choice": "required"}, "only allowed when tools are given"),
    "result for an unknown call": (
        {
            "messages": answered("call_1", "search_keywords", "{}")[:2]
            + [{"role": "tool", "tool_call_id": "call_9", "content": "x"}],
            "tools": TOOLS,
        },
        "answers tool call 'call_9'",
    ),
    "result without a call": (
        {"messages": [*ask(), {"role": "tool", "tool_call_id": "call_1", "content": "x"}]},
        "answers tool call 'call_1'",
    ),
    "result answered twice": (
        {
            "messages": [
                *answered("call_1", "search_keywords", "{}"),
                {"role": "tool", "tool_call_id": "call_1", "content": "again"},
            ]
        },
        "or was answered already",
    ),
    "call left unanswered": (
        {"messages": _unanswered_then_user(), "tools": TOOLS},
        "'call_1' has no tool message answering it",
    ),
    "call ending the conversation": (
        {"messages": answered("call_1", "search_keywords", "{}")[:2], "tools": TOOLS},
        "'call_1' has no tool message answering it",
    ),
    "parameters not an object schema": (
        {"tools": [_tool(parameters={"type": "array"})]},
        "must be an object JSON Schema",
    ),
    "parameters not a JSON Schema": (
        {"tools": [_tool(parameters={"type": "object", "properties": 5})]},
        "not a valid JSON Schema",
    ),
    "parameters nesting too deep": (
        {"tools": [_tool(parameters=_nested(40))]},
        "nest deeper than 32 levels",
    ),
    "duplicate function names": ({"tools": [GET_WEATHER, GET_WEATHER]}, "must be unique"),
    "bad function name": ({"tools": [_tool(name="no spaces")]}, "function name is 1 to 64"),
    "too many tools": ({"tools": [_tool(name=f"t{i}") for i in range(3)]}, "At most 2 tools"),
    "definitions too long": (
        {"tools": [_tool(description="d" * 3000)]},
        "at most 2000 are accepted",
    ),
    "legacy functions": ({"functions": [SEARCH_KEYWORDS["function"]]}, "functions"),
    "tool message without its id": (
        {"messages": [*ask(), {"role": "tool", "content": "x"}]},
        "carry a tool_call_id",
    ),
    "null content from the user": (
        {"messages": [{"role": "user", "content": None}]},
        "content may be null only",
    ),
    "repeated call id": (
        {
            "messages": [
                *ask(),
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": "{}"},
                        },
                    ]
                    * 2,
                },
            ],
            "tools": TOOLS,
        },
        "repeats a tool call id",
    ),
}


class TestRefusals:
    @pytest.mark.parametrize("case", sorted(REFUSED))
    async def test_is_a_422_and_nothing_is_spent(
        self, case: str, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        overrides, reason = REFUSED[case]
        async with FakeOpenAI() as fake:
            catalogue = write_catalogue(
                tmp_path / "catalogue.json",
                providers=[{"name": "oa", "kind": "openai", "base_url": fake.base_url}],
                models=[http_model("gpt", "oa")],
            )
            ai = AiSettings(catalogue=catalogue, tools_max=2, tools_max_chars=2000)
            async with gateway(make_settings(), ai) as gw:
                response = await gw.client.post(
                    "/v1/chat/completions",
                    json={"model": "gpt", "messages": ask(), **overrides},
                    headers=gw.headers,
                )
                await gw.engine.ledger.flush()
                report = (await gw.client.get("/api/usage", headers=gw.headers)).json()
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert error["type"] == "invalid_request_error"
        assert reason in error["message"]
        assert fake.calls == 0
        assert report["totals"]["requests"] == 0
