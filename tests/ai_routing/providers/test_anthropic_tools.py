"""Tool calling translated to the Anthropic Messages API, against a local fake of it:
what the fake receives (tools, tool_choice, tool_use and tool_result blocks) and
what the OpenAI SDK gets back, whole and streamed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.ai_routing.fakes import FakeAnthropic
from tests.ai_routing.gateway import Gateway, gateway, http_model, write_catalogue
from tests.ai_routing.test_openai_sdk import sdk_client
from tests.ai_routing.tools import QUESTION, RESULT, SEARCH_KEYWORDS, TOOLS, answered, ask
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.providers.anthropic_tools import anthropic_turns
from xynergy.ai_routing.providers.base import ChatMessage, ToolCall
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

ARGUMENTS = {"query": "yoga mats", "limit": 5, "period": "weekly"}
NO_CACHE = {"Cache-Control": "no-cache"}
ANTHROPIC_TOOLS = [
    {
        "name": "search_keywords",
        "description": "Search the tracked keywords and their trend.",
        "input_schema": SEARCH_KEYWORDS["function"]["parameters"],
    },
    {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
]


@asynccontextmanager
async def claude(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[FakeAnthropic, Gateway, openai.AsyncOpenAI]]:
    """A gateway whose model ``claude`` is served by a fake Anthropic API."""
    async with FakeAnthropic() as fake:
        fake.tool_call = ("search_keywords", ARGUMENTS)
        catalogue = write_catalogue(
            tmp_path / "catalogue.json",
            providers=[{"name": "anthropic", "kind": "anthropic", "base_url": fake.base_url}],
            models=[http_model("claude", "anthropic")],
        )
        async with (
            gateway(settings, AiSettings(catalogue=catalogue)) as gw,
            sdk_client(gw) as client,
        ):
            yield fake, gw, client


class TestAnthropicRoundTrip:
    async def test_tools_go_out_translated_and_the_tool_use_comes_back_as_a_tool_call(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with claude(make_settings(), tmp_path) as (fake, _, client):
            first = await client.chat.completions.create(
                model="claude",
                messages=[{"role": "system", "content": "Be brief."}, *ask()],
                tools=TOOLS,
                tool_choice="required",
                parallel_tool_calls=False,
                max_tokens=100,
            )
            sent_first = fake.requests[-1]
            call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
            second = await client.chat.completions.create(
                model="claude",
                messages=answered(call.id, call.function.name, call.function.arguments),
                tools=TOOLS,
                max_tokens=100,
            )
            sent_second = fake.requests[-1]

        assert sent_first["tools"] == ANTHROPIC_TOOLS
        assert sent_first["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        assert sent_first["system"] == "Be brief."
        assert first.choices[0].finish_reason == "tool_calls"
        assert first.choices[0].message.content == "Let me check."
        assert call.id == "toolu_fake_1"
        assert call.function.name == "search_keywords"
        assert json.loads(call.function.arguments) == ARGUMENTS

        assert sent_second["tool_choice"] == {"type": "auto"}
        assert sent_second["messages"] == [
            {"role": "user", "content": QUESTION},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "toolu_fake_1",
                        "name": "search_keywords",
                        "input": ARGUMENTS,
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_fake_1",
                        "content": json.dumps(RESULT),
                    },
                ],
            },
        ]
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "echo: " + json.dumps(RESULT)

    async def test_a_streamed_tool_use_reaches_the_sdk_as_tool_call_deltas(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with claude(make_settings(), tmp_path) as (fake, gw, client):
            async with client.chat.completions.stream(
                model="claude",
                messages=ask(),
                tools=TOOLS,
                tool_choice={"type": "function", "function": {"name": "search_keywords"}},
                max_tokens=100,
                stream_options={"include_usage": True},
            ) as stream:
                pieces = [
                    event.arguments_delta
                    async for event in stream
                    if event.type == "tool_calls.function.arguments.delta"
                ]
                final = await stream.get_final_completion()
            await gw.engine.ledger.flush()
            report = (await gw.client.get("/api/usage", headers=gw.headers)).json()

        assert fake.requests[-1]["stream"] is True
        assert fake.requests[-1]["tool_choice"] == {"type": "tool", "name": "search_keywords"}
        assert len([p for p in pieces if p]) == 2, "the input_json_delta pieces arrive as sent"
        message = final.choices[0].message
        assert message.content == "Let me check."
        assert message.tool_calls is not None
        assert [(c.id, c.function.name) for c in message.tool_calls] == [
            ("toolu_fake_1", "search_keywords")
        ]
        assert json.loads(message.tool_calls[0].function.arguments) == ARGUMENTS
        assert final.choices[0].finish_reason == "tool_calls"
        # Billed from the provider's own counts, at the catalogue's 1 and 2 USD / Mtok.
        assert final.usage is not None
        assert final.usage.completion_tokens == fake.reported_output_tokens
        assert report["totals"]["output_tokens"] == fake.reported_output_tokens
        expected_nanos = fake.reported_input_tokens * 1_000 + fake.reported_output_tokens * 2_000
        assert report["totals"]["cost_usd"] == f"0.{expected_nanos:09d}"

    async def test_strict_schemas_are_refused_before_any_call(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        strict = {**SEARCH_KEYWORDS, "function": {**SEARCH_KEYWORDS["function"], "strict": True}}
        async with claude(make_settings(), tmp_path) as (fake, gw, client):
            with pytest.raises(openai.UnprocessableEntityError) as caught:
                await client.chat.completions.create(
                    model="claude", messages=ask(), tools=[strict], max_tokens=100
                )
            await gw.engine.ledger.flush()
            report = (await gw.client.get("/api/usage", headers=gw.headers)).json()
        assert "strict function schemas" in caught.value.message
        assert caught.value.code == "validation_failed"
        assert fake.calls == 0
        assert report["totals"]["requests"] == 0

    @pytest.mark.parametrize(
        ("messages", "tools", "reason"),
        [
            (
                answered("toolu_1", "search_keywords", "{}"),
                None,
                "a conversation with tool calls must also list its tools",
            ),
            (
                answered("toolu_1", "search_keywords", "not json"),
                TOOLS,
                "are not a JSON object",
            ),
            (
                answered("call.1", "search_keywords", "{}"),
                TOOLS,
                "is not a valid Anthropic tool_use id",
            ),
        ],
    )
    async def test_what_has_no_translation_is_refused_before_any_call(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        reason: str,
    ) -> None:
        body: dict[str, Any] = {"model": "claude", "messages": messages, "max_tokens": 50}
        if tools is not None:
            body["tools"] = tools
        async with claude(make_settings(), tmp_path) as (fake, gw, _):
            response = await gw.client.post("/v1/chat/completions", json=body, headers=gw.headers)
        assert response.status_code == 422
        assert reason in response.json()["error"]["message"]
        assert fake.calls == 0


class TestTurns:
    async def test_tool_results_then_a_user_message_become_one_user_turn_of_blocks(self) -> None:
        call = ToolCall(id="toolu_1", name="f", arguments='{"a":1}')
        turns = anthropic_turns(
            (
                ChatMessage("user", "go"),
                ChatMessage("assistant", "", tool_calls=(call,)),
                ChatMessage("tool", "done", tool_call_id="toolu_1"),
                ChatMessage("user", "and then?"),
            )
        )
        assert turns == [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"},
                    {"type": "text", "text": "and then?"},
                ],
            },
        ]
