"""Tool calling passed through to an OpenAI-protocol upstream (a local fake of it):
what the fake receives, what the SDK gets back, and the response cache's key."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import Gateway, gateway, http_model, write_catalogue
from tests.ai_routing.test_openai_sdk import sdk_client
from tests.ai_routing.tools import GET_WEATHER, RESULT, TOOLS, answered, ask
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

ARGUMENTS = {"query": "yoga mats", "limit": 5, "period": "weekly"}


@asynccontextmanager
async def upstream(
    settings: Settings, tmp_path: Path
) -> AsyncIterator[tuple[FakeOpenAI, Gateway, openai.AsyncOpenAI]]:
    """A gateway whose model ``gpt`` is served by a fake OpenAI API."""
    async with FakeOpenAI() as fake:
        fake.tool_call = ("search_keywords", ARGUMENTS)
        catalogue = write_catalogue(
            tmp_path / "catalogue.json",
            providers=[{"name": "oa", "kind": "openai", "base_url": fake.base_url}],
            models=[http_model("gpt", "oa")],
        )
        async with (
            gateway(settings, AiSettings(catalogue=catalogue)) as gw,
            sdk_client(gw) as client,
        ):
            yield fake, gw, client


class TestPassThrough:
    async def test_tools_and_tool_messages_reach_the_upstream_as_sent(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with upstream(make_settings(), tmp_path) as (fake, _, client):
            first = await client.chat.completions.create(
                model="gpt",
                messages=ask(),
                tools=TOOLS,
                tool_choice={"type": "function", "function": {"name": "search_keywords"}},
                parallel_tool_calls=False,
                max_tokens=100,
            )
            sent_first = fake.requests[-1]
            call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
            conversation = answered(call.id, call.function.name, call.function.arguments)
            second = await client.chat.completions.create(
                model="gpt", messages=conversation, tools=TOOLS, max_tokens=100
            )
            sent_second = fake.requests[-1]

        assert sent_first["tools"] == TOOLS
        assert sent_first["tool_choice"] == {
            "type": "function",
            "function": {"name": "search_keywords"},
        }
        assert sent_first["parallel_tool_calls"] is False
        assert first.choices[0].finish_reason == "tool_calls"
        assert first.choices[0].message.content is None
        assert call.id == "call_fake_1"
        assert json.loads(call.function.arguments) == ARGUMENTS

        assert sent_second["tool_choice"] == "auto"
        assert "parallel_tool_calls" not in sent_second
        assert sent_second["messages"] == conversation
        assert second.choices[0].message.content == "echo: " + json.dumps(RESULT)

    async def test_streamed_tool_call_deltas_are_passed_on(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with upstream(make_settings(), tmp_path) as (fake, _, client):
            async with client.chat.completions.stream(
                model="gpt", messages=ask(), tools=TOOLS, max_tokens=100
            ) as stream:
                final = await stream.get_final_completion()
        assert fake.requests[-1]["stream"] is True
        message = final.choices[0].message
        assert message.tool_calls is not None
        assert [(c.id, c.function.name) for c in message.tool_calls] == [
            ("call_fake_1", "search_keywords")
        ]
        assert json.loads(message.tool_calls[0].function.arguments) == ARGUMENTS
        assert final.choices[0].finish_reason == "tool_calls"
        assert final.usage is None  # not asked for; the gateway still billed it


class TestCacheKey:
    async def test_tools_tool_choice_and_tool_messages_are_part_of_the_key(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        variants: list[dict[str, Any]] = [
            {"messages": ask()},
            {"messages": ask(), "tools": TOOLS},
            {"messages": ask(), "tools": [GET_WEATHER]},
            {"messages": ask(), "tools": TOOLS, "tool_choice": "required"},
            {"messages": ask(), "tools": TOOLS, "parallel_tool_calls": False},
            {"messages": answered("call_1", "search_keywords", "{}"), "tools": TOOLS},
            {"messages": answered("call_1", "search_keywords", '{"a":1}'), "tools": TOOLS},
            {"messages": answered("call_2", "search_keywords", "{}"), "tools": TOOLS},
            {
                "messages": answered("call_1", "search_keywords", "{}", result="other"),
                "tools": TOOLS,
            },
        ]
        async with upstream(make_settings(), tmp_path) as (fake, gw, _):
            first = [await _post(gw, variant) for variant in variants]
            calls_after_first = fake.calls
            again = [await _post(gw, variant) for variant in variants]
        assert calls_after_first == len(variants), "every variant missed the cache"
        assert fake.calls == len(variants), "every identical repeat was a hit"
        assert [body["xynergy"]["cached"] for body in first] == [False] * len(variants)
        assert [body["xynergy"]["cached"] for body in again] == [True] * len(variants)
        assert [b["choices"] for b in again] == [b["choices"] for b in first]


async def _post(gw: Gateway, variant: dict[str, Any]) -> dict[str, Any]:
    response = await gw.client.post(
        "/v1/chat/completions",
        json={"model": "gpt", "max_tokens": 50, **variant},
        headers=gw.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
