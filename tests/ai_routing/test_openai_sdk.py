"""The official ``openai`` SDK against the gateway, unchanged, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.ai_routing.gateway import gateway, served_on_loopback
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

PROMPT = "Write a tagline for: solar powered backpacks"


class TestOpenAiSdk:
    async def test_normal_and_streamed_chat_give_the_same_answer(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, served_on_loopback(gw.app) as base_url:
            secret = gw.headers["Authorization"].removeprefix("Bearer ")
            client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=secret, max_retries=0)
            async with client:
                whole = await client.chat.completions.create(
                    model="xynergy-offline",
                    messages=[{"role": "user", "content": PROMPT}],
                    max_tokens=40,
                )
                stream = await client.chat.completions.create(
                    model="xynergy-offline",
                    messages=[{"role": "user", "content": PROMPT}],
                    max_tokens=40,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers={"Cache-Control": "no-cache"},
                )
                pieces: list[str] = []
                usage = None
                finish_reasons: list[str] = []
                chunk_ids: set[str] = set()
                async for chunk in stream:
                    chunk_ids.add(chunk.id)
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        pieces.append(choice.delta.content or "")
                        if choice.finish_reason:
                            finish_reasons.append(choice.finish_reason)
                models = await client.models.list()
        assert whole.choices[0].message.content
        assert whole.model == "xynergy-offline"
        assert whole.usage is not None
        assert whole.usage.completion_tokens > 0
        assert len(pieces) > 2, "the offline stream comes in several deltas"
        assert "".join(pieces) == whole.choices[0].message.content
        assert finish_reasons == [whole.choices[0].finish_reason]
        assert usage is not None
        assert usage.completion_tokens == whole.usage.completion_tokens
        assert [model.id for model in models.data] == ["xynergy-offline"]
        assert len(chunk_ids) == 1, "every chunk of one response carries its id"
        assert chunk_ids != {whole.id}

    async def test_errors_reach_the_sdk_as_its_own_exceptions(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, served_on_loopback(gw.app) as base_url:
            secret = gw.headers["Authorization"].removeprefix("Bearer ")
            async with openai.AsyncOpenAI(
                base_url=base_url + "/v1", api_key=secret, max_retries=0
            ) as client:
                with pytest.raises(openai.NotFoundError):
                    await client.chat.completions.create(
                        model="gpt-nonexistent", messages=[{"role": "user", "content": "hi"}]
                    )
                with pytest.raises(openai.UnprocessableEntityError):
                    await client.chat.completions.create(
                        model="xynergy-offline",
                        messages=[{"role": "user", "content": "hi"}],
                        n=2,
                    )
            async with openai.AsyncOpenAI(
                base_url=base_url + "/v1", api_key="xyn_live_not_a_key", max_retries=0
            ) as anonymous:
                with pytest.raises(openai.AuthenticationError):
                    await anonymous.chat.completions.create(
                        model="xynergy-offline", messages=[{"role": "user", "content": "hi"}]
                    )
