"""The offline provider's tool rules: which tool, which arguments, and the answer to a result."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from xynergy.ai_routing.providers.base import (
    ChatMessage,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Tools,
    ToolSpec,
    UpstreamRequest,
)
from xynergy.ai_routing.providers.offline import OfflineProvider
from xynergy.ai_routing.providers.offline_tools import choose_tool_call

pytestmark = pytest.mark.asyncio

CAMPAIGN = ToolSpec(
    name="createCampaign",
    description="Draft a marketing campaign for keywords.",
    parameters={
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "channel": {"type": "string", "enum": ["email", "social", "search"]},
            "budget_usd": {"type": "number", "minimum": 10, "maximum": 500},
            "days": {"type": "integer", "default": 7},
            "dry_run": {"type": "boolean"},
            "keywords": {"type": "array", "items": {"type": "string"}},
            "audience": {
                "type": "object",
                "properties": {"region": {"type": "string", "default": "EU"}},
                "required": ["region"],
            },
            "note": {"type": ["string", "null"]},
        },
        "required": [
            "name",
            "channel",
            "budget_usd",
            "days",
            "dry_run",
            "keywords",
            "audience",
            "note",
        ],
    },
)
WEATHER = ToolSpec(name="get_weather", description="Forecast for a city.", parameters={})


def request(text: str, tools: Tools | None, *history: ChatMessage) -> UpstreamRequest:
    messages = (*history, ChatMessage("user", text)) if not history else history
    return UpstreamRequest(model="offline", messages=messages, max_tokens=100, tools=tools)


class TestArguments:
    async def test_filled_from_the_message_and_valid_for_the_schema(self) -> None:
        text = 'Create a social campaign name: Spring sale, budget 900 for "yoga mats"'
        call = choose_tool_call(request(text, Tools(specs=(WEATHER, CAMPAIGN))))

        assert call is not None
        assert call.name == "createCampaign"
        arguments = json.loads(call.arguments)
        jsonschema_rs.validate(CAMPAIGN.parameters, arguments)
        assert arguments == {
            "name": "Spring sale",  # labelled in the message, within maxLength
            "channel": "social",  # the enum value the message names
            "budget_usd": 500.0,  # the number next to "budget", clamped to the maximum
            "days": 7,  # the schema's default
            "dry_run": False,
            "keywords": ["yoga mats"],  # the quoted phrase
            "audience": {"region": "EU"},
            "note": "yoga mats",
        }

    async def test_defaults_when_the_message_says_nothing(self) -> None:
        call = choose_tool_call(
            request("campaign please", Tools(specs=(CAMPAIGN,), mode="required"))
        )
        assert call is not None
        arguments = json.loads(call.arguments)
        jsonschema_rs.validate(CAMPAIGN.parameters, arguments)
        assert arguments["channel"] == "email"
        assert arguments["budget_usd"] == 10.0

    async def test_a_tool_without_parameters_gets_an_empty_object(self) -> None:
        call = choose_tool_call(request("weather in Oslo", Tools(specs=(CAMPAIGN, WEATHER))))
        assert call == ToolCall(id=call.id if call else "", name="get_weather", arguments="{}")


class TestChoice:
    async def test_auto_after_a_tool_result_answers_in_text(self) -> None:
        call = ToolCall(id="call_1", name="get_weather", arguments="{}")
        history = (
            ChatMessage("user", "weather in Oslo"),
            ChatMessage("assistant", "", tool_calls=(call,)),
            ChatMessage("tool", '{"celsius": 4}', tool_call_id="call_1"),
        )
        tools = Tools(specs=(WEATHER,))
        assert choose_tool_call(request("", tools, *history)) is None
        completion = await OfflineProvider("offline").complete(request("", tools, *history))
        assert completion.tool_calls == ()
        assert completion.text.endswith("The tool get_weather returned: celsius: 4")
        forced = Tools(specs=(WEATHER,), mode="required")
        assert choose_tool_call(request("", forced, *history)) is not None

    async def test_the_stream_adds_up_to_the_whole_answer(self) -> None:
        provider = OfflineProvider("offline")
        asked = request("campaign for yoga", Tools(specs=(CAMPAIGN, WEATHER)))
        whole = await provider.complete(asked)
        events: list[Any] = [event async for event in provider.stream(asked)]

        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        deltas = [e for e in events if isinstance(e, ToolCallDelta)]
        assert text == whole.text
        assert (deltas[0].id, deltas[0].name) == (whole.tool_calls[0].id, "createCampaign")
        assert "".join(d.arguments for d in deltas) == whole.tool_calls[0].arguments
        assert len(deltas) == 3
        assert events[-1] == StreamEnd(finish_reason="tool_calls", usage=whole.usage)
        assert whole.finish_reason == "tool_calls"
