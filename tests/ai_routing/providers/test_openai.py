"""The OpenAI-compatible adapter against a local fake that speaks the protocol, failures included."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest

from tests.ai_routing.fakes import FakeOpenAI, count_tokens, expected_answer
from xynergy.ai_routing.catalogue import ProviderSpec
from xynergy.ai_routing.providers.base import (
    ChatMessage,
    Completion,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    UpstreamRequest,
    Usage,
)
from xynergy.ai_routing.providers.openai import OpenAIProvider

API_KEY = "sk-test-0123456789abcdef"
PROMPT = "write a tagline for a coffee shop"
REQUEST = UpstreamRequest(
    model="gpt-test",
    messages=(ChatMessage("system", "be brief"), ChatMessage("user", PROMPT)),
    max_tokens=256,
    request_id="req-123",
)
ANSWER = expected_answer(PROMPT)
USAGE = Usage(input_tokens=count_tokens("be brief " + PROMPT), output_tokens=count_tokens(ANSWER))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def upstream() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as fake:
        yield fake


def make_provider(
    base_url: str,
    session: aiohttp.ClientSession,
    *,
    api_key: str | None = API_KEY,
    timeout: float = 5.0,
    max_response_bytes: int = 1_000_000,
) -> OpenAIProvider:
    return OpenAIProvider(
        ProviderSpec(name="oa", kind="openai", base_url=base_url),
        session=session,
        api_key=api_key,
        timeout=aiohttp.ClientTimeout(total=timeout),
        max_response_bytes=max_response_bytes,
    )


async def collect(
    provider: OpenAIProvider, request: UpstreamRequest = REQUEST
) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


async def collect_into(seen: list[StreamEvent], provider: OpenAIProvider) -> None:
    async for event in provider.stream(REQUEST):
        seen.append(event)


async def error_of(call: Awaitable[object]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


class TestComplete:
    async def test_answers_with_text_finish_reason_and_usage(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        completion = await make_provider(upstream.base_url, session).complete(REQUEST)

        assert completion == Completion(text=ANSWER, finish_reason="stop", usage=USAGE)
        assert upstream.reported_input_tokens == USAGE.input_tokens
        assert upstream.reported_output_tokens == USAGE.output_tokens

    async def test_sends_the_chat_completion_body(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        await make_provider(upstream.base_url, session).complete(REQUEST)

        assert upstream.requests[-1] == {
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": PROMPT},
            ],
            "max_tokens": 256,
            "stream": False,
        }

    async def test_sends_sampling_fields_when_set(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(
            model="gpt-test",
            messages=(ChatMessage("user", PROMPT),),
            max_tokens=16,
            temperature=0.2,
            top_p=0.9,
            stop=("END",),
        )
        await make_provider(upstream.base_url, session).complete(request)

        body = upstream.requests[-1]
        assert (body["temperature"], body["top_p"], body["stop"]) == (0.2, 0.9, ["END"])

    async def test_sends_key_as_bearer_and_the_request_id(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        await make_provider(upstream.base_url, session).complete(REQUEST)

        assert upstream.headers[-1]["authorization"] == f"Bearer {API_KEY}"
        assert upstream.headers[-1]["x-request-id"] == "req-123"

    async def test_sends_no_authorization_without_a_key(
        self, session: aiohttp.ClientSession
    ) -> None:
        async with FakeOpenAI() as keyless:
            await make_provider(keyless.base_url, session, api_key=None).complete(REQUEST)

            assert "authorization" not in keyless.headers[-1]

    async def test_max_tokens_reached_reports_length(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(model="m", messages=(ChatMessage("user", PROMPT),), max_tokens=2)
        completion = await make_provider(upstream.base_url, session).complete(request)

        assert completion.finish_reason == "length"
        assert completion.usage.output_tokens == 2

    async def test_server_error_is_retryable_and_counts_for_the_breaker(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=500, message="the model is on fire")
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (500, True, True)
        assert "the model is on fire" in error.detail

    async def test_rate_limit_is_retryable_without_counting_for_the_breaker(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=429)
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (429, True, False)

    async def test_bad_request_is_not_retryable(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=400)
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (400, False, False)

    async def test_slow_upstream_times_out(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.delay_seconds = 2.0
        error = await error_of(
            make_provider(upstream.base_url, session, timeout=0.2).complete(REQUEST)
        )

        assert error.timeout
        assert (error.retryable, error.breaker_failure) == (True, True)

    async def test_refused_connection_is_unreachable(self, session: aiohttp.ClientSession) -> None:
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            base_url = f"http://127.0.0.1:{unused.getsockname()[1]}/v1"
            error = await error_of(make_provider(base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure, error.timeout) == (
            None,
            True,
            True,
            False,
        )

    async def test_oversized_answer_is_refused(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        provider = make_provider(upstream.base_url, session, max_response_bytes=64)
        error = await error_of(provider.complete(REQUEST))

        assert "larger than 64 bytes" in error.detail

    async def test_key_never_appears_in_the_error_detail(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=401, message=f"Incorrect API key provided: {API_KEY}.")
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert error.status == 401
        assert API_KEY not in error.detail
        assert API_KEY not in str(error)

    async def test_long_upstream_message_is_truncated(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=503, message="overloaded " * 100)
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert len(error.detail) < 250

    async def test_body_that_is_not_json_is_unreachable(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = b"<html>gateway</html>"
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (None, True, True)

    async def test_answer_without_usage_is_unreachable(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = json.dumps(
            {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}
        ).encode()
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert "usage" in error.detail
        assert error.breaker_failure


class TestStream:
    async def test_deltas_join_to_the_complete_text_and_end_with_usage(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        provider = make_provider(upstream.base_url, session)
        events = await collect(provider)
        completion = await provider.complete(REQUEST)

        deltas = [event for event in events if isinstance(event, TextDelta)]
        assert len(deltas) > 1
        assert "".join(delta.text for delta in deltas) == completion.text
        assert events[-1] == StreamEnd(finish_reason="stop", usage=USAGE)
        assert isinstance(events[-2], TextDelta)

    async def test_asks_for_usage_in_the_stream(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        await collect(make_provider(upstream.base_url, session))

        body = upstream.requests[-1]
        assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})

    async def test_cut_stream_raises_after_the_first_deltas(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.cut_stream_after(2)
        seen: list[StreamEvent] = []
        error = await error_of(collect_into(seen, make_provider(upstream.base_url, session)))

        assert len(seen) == 2
        assert all(isinstance(event, TextDelta) for event in seen)
        assert (error.retryable, error.breaker_failure) == (True, True)

    async def test_body_ending_without_done_raises(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        chunk = {"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}
        upstream.raw_body = f"data: {json.dumps(chunk)}\n\n".encode()
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert "stream cut" in error.detail

    async def test_done_without_usage_raises(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        chunk = {"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}
        upstream.raw_body = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert "usage" in error.detail

    async def test_error_payload_raises(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.error_stream_after(1, message="model overloaded")
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert "model overloaded" in error.detail
        assert error.retryable

    async def test_server_error_before_the_stream_is_classified(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=502)
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert (error.status, error.retryable, error.breaker_failure) == (502, True, True)

    async def test_bad_request_before_the_stream_is_not_retryable(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=400)
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert (error.status, error.retryable) == (400, False)

    async def test_stalled_stream_times_out(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.chunk_delay_seconds = 1.0
        error = await error_of(collect(make_provider(upstream.base_url, session, timeout=0.3)))

        assert error.timeout

    async def test_oversized_event_is_refused(
        self, upstream: FakeOpenAI, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = b"data: " + b"x" * 10_000 + b"\n\n"
        provider = make_provider(upstream.base_url, session, max_response_bytes=1_000)
        error = await error_of(collect(provider))

        assert "larger than 1000 bytes" in error.detail
