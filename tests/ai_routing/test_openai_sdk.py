"""The official ``openai`` SDK against the gateway, unchanged, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

from tests.ai_routing.fakes import FakeAnthropic, FakeOpenAI
from tests.ai_routing.gateway import (
    Gateway,
    gateway,
    served_on_loopback,
    two_provider_catalogue,
)
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings

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


@asynccontextmanager
async def sdk_client(gw: Gateway, api_key: str | None = None) -> AsyncIterator[openai.AsyncOpenAI]:
    """The SDK, as a user would configure it, against ``gw`` served on loopback."""
    secret = api_key or gw.headers["Authorization"].removeprefix("Bearer ")
    async with served_on_loopback(gw.app) as base_url:
        async with openai.AsyncOpenAI(
            base_url=base_url + "/v1", api_key=secret, max_retries=0
        ) as client:
            yield client


async def ask(
    client: openai.AsyncOpenAI,
    model: str = "xynergy-offline",
    max_tokens: int = 40,
    **extra: Any,
) -> None:
    await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Suggest keywords for a yoga app"}],
        max_tokens=max_tokens,
        **extra,
    )


async def read_deltas(stream: openai.AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    async for chunk in stream:
        into.extend(choice.delta.content or "" for choice in chunk.choices)


def assert_reason_carried(error: openai.APIStatusError, *, code: str, type_: str) -> None:
    """What the SDK shows (``str(error)``), ``code`` and ``type`` say why, and the
    message names the request id of the ``X-Request-ID`` header."""
    assert error.code == code
    assert error.type == type_
    assert error.param is None
    assert error.request_id
    assert error.message.endswith(f"(request id: {error.request_id})")
    assert str(error).startswith(f"Error code: {error.status_code} - ")
    # More than the status: the reason a person can act on.
    assert len(error.message) > len(f" (request id: {error.request_id})") + 10


class TestSdkErrors:
    async def test_a_bad_key_is_an_authentication_error_saying_so(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, sdk_client(gw, "xyn_live_not_a_key") as client:
            with pytest.raises(openai.AuthenticationError) as caught:
                await ask(client)
        assert caught.value.status_code == 401
        assert_reason_carried(caught.value, code="unauthorized", type_="invalid_request_error")
        assert "API key" in caught.value.message

    async def test_a_key_without_ai_generate_is_refused_naming_the_scope(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with (
            gateway(make_settings(), scopes=("ai:usage",)) as gw,
            sdk_client(gw) as client,
        ):
            with pytest.raises(openai.PermissionDeniedError) as caught:
                await ask(client)
        assert caught.value.status_code == 403
        assert_reason_carried(caught.value, code="forbidden", type_="invalid_request_error")
        assert "ai:generate" in caught.value.message

    async def test_an_unknown_model_is_not_found_naming_it(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, sdk_client(gw) as client:
            with pytest.raises(openai.NotFoundError) as caught:
                await ask(client, model="gpt-nonexistent")
        assert caught.value.status_code == 404
        assert_reason_carried(caught.value, code="not_found", type_="invalid_request_error")
        assert "gpt-nonexistent" in caught.value.message

    async def test_an_invalid_body_is_unprocessable_naming_the_field(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw, sdk_client(gw) as client:
            with pytest.raises(openai.UnprocessableEntityError) as caught:
                await ask(client, n=2)
        assert caught.value.status_code == 422
        assert_reason_carried(caught.value, code="validation_failed", type_="invalid_request_error")
        assert "body.n" in caught.value.message

    async def test_the_request_rate_limit_is_a_rate_limit_error_with_retry_after(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings(rate_limits={**DEFAULT_RATE_LIMITS, "ai_generate": "1/minute"})
        async with gateway(settings) as gw, sdk_client(gw) as client:
            await ask(client)
            with pytest.raises(openai.RateLimitError) as caught:
                await ask(client)
        assert caught.value.status_code == 429
        assert_reason_carried(caught.value, code="rate_limited", type_="rate_limit_error")
        assert int(caught.value.response.headers["Retry-After"]) >= 1

    async def test_the_tokens_per_minute_limit_is_a_rate_limit_error_with_retry_after(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        ai = AiSettings(tokens_per_minute="100/minute")
        async with gateway(make_settings(), ai) as gw, sdk_client(gw) as client:
            await ask(client, max_tokens=60)
            with pytest.raises(openai.RateLimitError) as caught:
                await ask(client, max_tokens=60, extra_headers={"Cache-Control": "no-cache"})
        assert_reason_carried(caught.value, code="rate_limited", type_="rate_limit_error")
        assert int(caught.value.response.headers["Retry-After"]) >= 1

    async def test_every_candidate_down_is_unavailable_naming_each_and_why(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.fail_next(1, status=503, message="alpha is down")
            beta.fail_next(1, status=529, message="beta is overloaded")
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            async with gateway(make_settings(), ai) as gw, sdk_client(gw) as client:
                with pytest.raises(openai.InternalServerError) as caught:
                    await ask(client, model="primary")
        assert caught.value.status_code == 503
        assert_reason_carried(
            caught.value, code="upstream_unavailable", type_="service_unavailable_error"
        )
        message = caught.value.message
        assert "primary (alpha: HTTP 503: alpha is down)" in message
        assert "secondary (beta: HTTP 529: beta is overloaded)" in message
        assert message.index("primary (") < message.index("secondary (")

    async def test_a_stream_failing_midway_raises_with_its_reason(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.error_stream_after(2, message="alpha fell over")
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            async with gateway(make_settings(), ai) as gw, sdk_client(gw) as client:
                stream = await client.chat.completions.create(
                    model="primary",
                    messages=[{"role": "user", "content": "a question long enough to stream"}],
                    max_tokens=40,
                    stream=True,
                )
                pieces: list[str] = []
                with pytest.raises(openai.APIError) as caught:
                    await read_deltas(stream, pieces)
        assert "".join(pieces), "the deltas before the failure arrived"
        assert caught.value.code == "stream_interrupted"
        assert caught.value.type == "service_unavailable_error"
        assert "alpha fell over" in caught.value.message
        assert "(request id: " in caught.value.message
