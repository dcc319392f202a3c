"""The Anthropic Messages adapter against a local fake that speaks the protocol, failures included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable

import aiohttp
import pytest

from tests.ai_routing.fakes import FakeAnthropic, count_tokens, expected_answer
from xynergy.ai_routing.catalogue import ProviderSpec
from xynergy.ai_routing.providers.anthropic import ANTHROPIC_VERSION, AnthropicProvider
from xynergy.ai_routing.providers.base import (
    ChatMessage,
    Completion,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    UpstreamRequest,
    Usage,
)

API_KEY = "sk-ant-test-0123456789abcdef"
PROMPT = "write a tagline for a coffee shop"
REQUEST = UpstreamRequest(
    model="claude-test",
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
async def upstream() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=API_KEY) as fake:
        yield fake


def make_provider(
    base_url: str,
    session: aiohttp.ClientSession,
    *,
    timeout: float = 5.0,
    max_response_bytes: int = 1_000_000,
) -> AnthropicProvider:
    return AnthropicProvider(
        ProviderSpec(name="claude", kind="anthropic", base_url=base_url),
        session=session,
        api_key=API_KEY,
        timeout=aiohttp.ClientTimeout(total=timeout),
        max_response_bytes=max_response_bytes,
    )


async def collect(
    provider: AnthropicProvider, request: UpstreamRequest = REQUEST
) -> list[StreamEvent]:
    return [event async for event in provider.stream(request)]


async def collect_into(seen: list[StreamEvent], provider: AnthropicProvider) -> None:
    async for event in provider.stream(REQUEST):
        seen.append(event)


async def error_of(call: Awaitable[object]) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await call
    return caught.value


class TestComplete:
    async def test_answers_with_text_finish_reason_and_usage(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        completion = await make_provider(upstream.base_url, session).complete(REQUEST)

        assert completion == Completion(text=ANSWER, finish_reason="stop", usage=USAGE)
        assert upstream.reported_input_tokens == USAGE.input_tokens
        assert upstream.reported_output_tokens == USAGE.output_tokens

    async def test_moves_system_to_the_top_and_merges_same_role_turns(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(
            model="claude-test",
            messages=(
                ChatMessage("system", "be brief"),
                ChatMessage("user", "hello"),
                ChatMessage("user", "are you there"),
                ChatMessage("assistant", "yes"),
                ChatMessage("system", "use English"),
                ChatMessage("user", PROMPT),
            ),
            max_tokens=64,
        )
        await make_provider(upstream.base_url, session).complete(request)

        assert upstream.requests[-1] == {
            "model": "claude-test",
            "system": "be brief\n\nuse English",
            "messages": [
                {"role": "user", "content": "hello\n\nare you there"},
                {"role": "assistant", "content": "yes"},
                {"role": "user", "content": PROMPT},
            ],
            "max_tokens": 64,
            "stream": False,
        }

    async def test_sends_sampling_fields_when_set(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(
            model="claude-test",
            messages=(ChatMessage("user", PROMPT),),
            max_tokens=16,
            temperature=0.2,
            top_p=0.9,
            stop=("END",),
        )
        await make_provider(upstream.base_url, session).complete(request)

        body = upstream.requests[-1]
        assert (body["temperature"], body["top_p"], body["stop_sequences"]) == (0.2, 0.9, ["END"])
        assert "system" not in body

    async def test_sends_key_version_and_request_id_headers(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        await make_provider(upstream.base_url, session).complete(REQUEST)

        headers = upstream.headers[-1]
        assert headers["x-api-key"] == API_KEY
        assert headers["anthropic-version"] == ANTHROPIC_VERSION
        assert headers["content-type"] == "application/json"
        assert headers["x-request-id"] == "req-123"
        assert "authorization" not in headers

    async def test_max_tokens_stop_reason_reports_length(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(model="m", messages=(ChatMessage("user", PROMPT),), max_tokens=2)
        completion = await make_provider(upstream.base_url, session).complete(request)

        assert completion.finish_reason == "length"
        assert completion.usage.output_tokens == 2

    async def test_joins_the_text_blocks_and_keeps_tool_use_apart(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = json.dumps(
            {
                "content": [
                    {"type": "text", "text": "one "},
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {}},
                    {"type": "text", "text": "two"},
                ],
                "stop_reason": "stop_sequence",
                "usage": {"input_tokens": 3, "output_tokens": 2},
            }
        ).encode()
        completion = await make_provider(upstream.base_url, session).complete(REQUEST)

        assert completion == Completion(
            text="one two",
            finish_reason="stop",
            usage=Usage(3, 2),
            tool_calls=(ToolCall(id="t1", name="f", arguments="{}"),),
        )

    async def test_overloaded_is_retryable_and_counts_for_the_breaker(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=529, message="Overloaded")
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (529, True, True)
        assert "Overloaded" in error.detail

    async def test_rate_limit_is_retryable_without_counting_for_the_breaker(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=429)
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (429, True, False)

    async def test_bad_request_is_not_retryable(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=400)
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (400, False, False)

    async def test_slow_upstream_times_out(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.delay_seconds = 2.0
        error = await error_of(
            make_provider(upstream.base_url, session, timeout=0.2).complete(REQUEST)
        )

        assert error.timeout
        assert (error.retryable, error.breaker_failure) == (True, True)

    async def test_oversized_answer_is_refused(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        provider = make_provider(upstream.base_url, session, max_response_bytes=64)
        error = await error_of(provider.complete(REQUEST))

        assert "larger than 64 bytes" in error.detail

    async def test_key_never_appears_in_the_error_detail(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=401, message=f"invalid x-api-key {API_KEY}")
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert error.status == 401
        assert API_KEY not in error.detail
        assert API_KEY not in str(error)

    async def test_answer_without_usage_is_unreachable(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = json.dumps({"content": [{"type": "text", "text": "hi"}]}).encode()
        error = await error_of(make_provider(upstream.base_url, session).complete(REQUEST))

        assert (error.status, error.retryable, error.breaker_failure) == (None, True, True)
        assert "usage" in error.detail


class TestStream:
    async def test_deltas_join_to_the_complete_text_and_end_with_usage(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        provider = make_provider(upstream.base_url, session)
        events = await collect(provider)
        completion = await provider.complete(REQUEST)

        deltas = [event for event in events if isinstance(event, TextDelta)]
        assert len(deltas) > 1
        assert "".join(delta.text for delta in deltas) == completion.text
        assert events[-1] == StreamEnd(finish_reason="stop", usage=USAGE)
        assert isinstance(events[-2], TextDelta)

    async def test_max_tokens_stop_reason_reports_length(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        request = UpstreamRequest(model="m", messages=(ChatMessage("user", PROMPT),), max_tokens=3)
        events = await collect(make_provider(upstream.base_url, session), request)

        assert events[-1] == StreamEnd(finish_reason="length", usage=Usage(count_tokens(PROMPT), 3))

    async def test_cut_stream_raises_after_the_first_deltas(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.cut_stream_after(2)
        seen: list[StreamEvent] = []
        error = await error_of(collect_into(seen, make_provider(upstream.base_url, session)))

        assert len(seen) == 2
        assert all(isinstance(event, TextDelta) for event in seen)
        assert (error.retryable, error.breaker_failure) == (True, True)

    async def test_body_ending_before_message_stop_raises(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        delta = {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}
        upstream.raw_body = f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode()
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert "stream cut" in error.detail

    async def test_error_event_raises_classified_by_its_type(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.error_stream_after(1, message="Overloaded")
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert (error.status, error.retryable, error.breaker_failure) == (529, True, True)
        assert "Overloaded" in error.detail

    async def test_server_error_before_the_stream_is_classified(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.fail_next(1, status=500)
        error = await error_of(collect(make_provider(upstream.base_url, session)))

        assert (error.status, error.retryable, error.breaker_failure) == (500, True, True)

    async def test_stalled_stream_times_out(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.chunk_delay_seconds = 1.0
        error = await error_of(collect(make_provider(upstream.base_url, session, timeout=0.3)))

        assert error.timeout

    async def test_oversized_event_is_refused(
        self, upstream: FakeAnthropic, session: aiohttp.ClientSession
    ) -> None:
        upstream.raw_body = b"event: ping\ndata: " + b"x" * 10_000 + b"\n\n"
        provider = make_provider(upstream.base_url, session, max_response_bytes=1_000)
        error = await error_of(collect(provider))

        assert "larger than 1000 bytes" in error.detail
