"""Tool calling through ``/v1/chat/completions`` with the offline provider, by the
official OpenAI SDK: choosing a tool, its arguments, the round trip, streaming."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema_rs
import pytest

from tests.ai_routing.gateway import gateway, stream_text
from tests.ai_routing.test_openai_sdk import sdk_client
from tests.ai_routing.tools import (
    GET_WEATHER,
    QUESTION,
    RESULT,
    SEARCH_KEYWORDS,
    TOOLS,
    answered,
    ask,
)
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

MODEL = "xynergy-offline"
NO_CACHE = {"Cache-Control": "no-cache"}


class TestOfflineRoundTrip:
    async def test_the_sdk_calls_the_matching_tool_then_gets_the_result_summarised(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, sdk_client(gw) as client:
            first = await client.chat.completions.create(
                model=MODEL, messages=ask(), tools=TOOLS, max_tokens=200
            )
            message = first.choices[0].message
            assert message.tool_calls is not None
            call = message.tool_calls[0]
            history: list[Any] = [
                *ask(),
                message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(RESULT)},
            ]
            second = await client.chat.completions.create(
                model=MODEL, messages=history, tools=TOOLS, max_tokens=200
            )

        assert first.choices[0].finish_reason == "tool_calls"
        assert len(message.tool_calls) == 1
        assert call.type == "function"
        assert call.function.name == "search_keywords"
        arguments = json.loads(call.function.arguments)
        assert arguments == {
            "query": "keywords yoga mats trending weekly top",
            "limit": 5,
            "period": "weekly",
        }
        jsonschema_rs.validate(SEARCH_KEYWORDS["function"]["parameters"], arguments)
        assert call.id.startswith("call_offline_")
        assert message.content is not None
        assert "Offline" in message.content
        assert first.usage is not None
        assert first.usage.completion_tokens > 0

        answer = second.choices[0]
        assert answer.finish_reason == "stop"
        assert answer.message.tool_calls is None
        assert answer.message.content is not None
        assert answer.message.content.startswith("Offline answer")
        assert "search_keywords returned" in answer.message.content
        assert "cork yoga mat" in answer.message.content

    async def test_the_sdk_accumulates_a_streamed_tool_call_equal_to_the_whole_one(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, sdk_client(gw) as client:
            whole = await client.chat.completions.create(
                model=MODEL, messages=ask(), tools=TOOLS, max_tokens=200
            )
            async with client.chat.completions.stream(
                model=MODEL,
                messages=ask(),
                tools=TOOLS,
                max_tokens=200,
                stream_options={"include_usage": True},
                extra_headers=NO_CACHE,
            ) as stream:
                argument_deltas = [
                    event
                    async for event in stream
                    if event.type == "tool_calls.function.arguments.delta"
                ]
                streamed = await stream.get_final_completion()

        assert len(argument_deltas) >= 2, "the arguments arrive in pieces the SDK joins"
        expected = whole.choices[0].message
        got = streamed.choices[0].message
        assert expected.tool_calls is not None
        assert got.tool_calls is not None
        assert [_call(c) for c in got.tool_calls] == [_call(c) for c in expected.tool_calls]
        assert got.content == expected.content
        assert streamed.choices[0].finish_reason == "tool_calls"
        assert streamed.usage is not None
        assert whole.usage is not None
        assert streamed.usage.completion_tokens == whole.usage.completion_tokens

    async def test_a_cached_tool_call_is_replayed_as_a_stream(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            whole = (await gw.chat(QUESTION, tools=TOOLS)).json()
            replayed = await gw.chat(QUESTION, tools=TOOLS, stream=True)
        assert '"cached":true' in replayed.text
        chunks = [
            json.loads(line[6:])
            for line in replayed.text.splitlines()
            if line.startswith("data: {")
        ]
        calls = [
            call
            for chunk in chunks
            for choice in chunk["choices"]
            for call in choice["delta"].get("tool_calls") or ()
        ]
        expected = whole["choices"][0]["message"]["tool_calls"][0]
        assert calls == [{"index": 0, **expected}]
        assert stream_text(replayed.text) == whole["choices"][0]["message"]["content"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


class TestOfflineChoice:
    async def test_the_same_conversation_gets_the_same_call(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            one = (await gw.chat(QUESTION, tools=TOOLS, headers=NO_CACHE)).json()
            two = (await gw.chat(QUESTION, tools=TOOLS, headers=NO_CACHE)).json()
            other = (await gw.chat(QUESTION + "!", tools=TOOLS, headers=NO_CACHE)).json()
        assert one["xynergy"]["cached"] is False
        assert two["xynergy"]["cached"] is False
        call = one["choices"][0]["message"]["tool_calls"]
        assert call == two["choices"][0]["message"]["tool_calls"]
        assert call[0]["id"] != other["choices"][0]["message"]["tool_calls"][0]["id"]

    async def test_the_tool_sharing_the_most_words_is_chosen(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            body = (await gw.chat("What is the weather forecast in Lisbon?", tools=TOOLS)).json()
        call = body["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call["name"] == "get_weather"
        assert json.loads(call["arguments"]) == {"city": "weather forecast lisbon"}

    async def test_auto_answers_in_text_when_no_tool_fits(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            body = (await gw.chat("Suggest taglines for a bakery", tools=TOOLS)).json()
        choice = body["choices"][0]
        assert choice["finish_reason"] == "stop"
        assert "tool_calls" not in choice["message"]
        assert "bakery" in choice["message"]["content"]

    @pytest.mark.parametrize(
        ("tool_choice", "expected"),
        [
            ("required", "search_keywords"),
            ({"type": "function", "function": {"name": "get_weather"}}, "get_weather"),
            ("none", None),
        ],
    )
    async def test_tool_choice_forces_or_forbids_a_call(
        self,
        make_settings: Callable[..., Settings],
        tool_choice: Any,
        expected: str | None,
    ) -> None:
        # A message sharing no word with either tool: auto would not call.
        async with gateway(make_settings()) as gw:
            body = (
                await gw.chat("Suggest taglines for a bakery", tools=TOOLS, tool_choice=tool_choice)
            ).json()
        choice = body["choices"][0]
        if expected is None:
            assert choice["finish_reason"] == "stop"
            assert "tool_calls" not in choice["message"]
        else:
            assert choice["finish_reason"] == "tool_calls"
            assert choice["message"]["tool_calls"][0]["function"]["name"] == expected

    async def test_the_same_prompt_with_tools_is_not_the_answer_without(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            plain = (await gw.chat(QUESTION)).json()
            with_tools = (await gw.chat(QUESTION, tools=TOOLS)).json()
            other_tools = (await gw.chat(QUESTION, tools=[GET_WEATHER])).json()
        assert plain["xynergy"]["cached"] is False
        assert with_tools["xynergy"]["cached"] is False
        assert other_tools["xynergy"]["cached"] is False
        assert "tool_calls" not in plain["choices"][0]["message"]
        assert with_tools["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
            "search_keywords"
        )

    async def test_a_tool_result_answers_in_text_even_with_tools_offered(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        messages = answered("call_1", "search_keywords", '{"query":"yoga"}', result="plain text")
        async with gateway(make_settings()) as gw:
            response = await gw.client.post(
                "/v1/chat/completions",
                json={"model": MODEL, "messages": messages, "tools": TOOLS},
                headers=gw.headers,
            )
        body = response.json()
        assert response.status_code == 200, body
        assert body["choices"][0]["message"]["content"] == (
            "Offline answer (no AI model was used).\nThe tool search_keywords returned: plain text"
        )


def _call(call: Any) -> tuple[str, str, str, str]:
    return call.id, call.type, call.function.name, call.function.arguments


DRAFT_CAMPAIGN: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "draft_campaign",
        "description": "Draft a marketing campaign around chosen phrases.",
        "parameters": {
            "type": "object",
            "properties": {
                "keywords": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": 200},
                    "maxItems": 20,
                }
            },
            "required": ["keywords"],
        },
    },
}
TRENDING = [{"phrase": phrase, "change": 10 - i} for i, phrase in enumerate("abcde")]


class TestOfflineArgumentsFromResults:
    """A follow-up call takes the phrases the earlier results listed, not the question's words."""

    async def _second_call(self, gw: Any, question: str) -> dict[str, Any]:
        messages = [
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "search_keywords", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"items": TRENDING})},
        ]
        response = await gw.client.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": messages, "tools": [SEARCH_KEYWORDS, DRAFT_CAMPAIGN]},
            headers=gw.headers,
        )
        assert response.status_code == 200, response.text
        call = response.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        assert call["name"] == "draft_campaign"
        arguments: dict[str, Any] = json.loads(call["arguments"])
        return arguments

    async def test_the_top_three_trending_phrases_are_drafted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        question = "Which keywords are trending? Then draft a campaign for the top three."
        async with gateway(make_settings()) as gw:
            arguments = await self._second_call(gw, question)
        assert arguments == {"keywords": ["a", "b", "c"]}

    async def test_without_a_count_every_listed_phrase_is_taken(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        question = "Which keywords are trending? Draft a campaign around them."
        async with gateway(make_settings()) as gw:
            arguments = await self._second_call(gw, question)
        assert arguments == {"keywords": ["a", "b", "c", "d", "e"]}
