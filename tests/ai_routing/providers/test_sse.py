"""The SSE parser: line endings, multi-line data, comments, chunk splits and the size bound."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from xynergy.ai_routing.providers.base import ProviderError
from xynergy.ai_routing.providers.sse import SSEEvent, SSEParser, iter_sse

STREAM = (
    b": keep-alive comment\n"
    b"event: message_start\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"data: first line\n"
    b"data: second line\n"
    b"id: 7\n"
    b"retry: 1000\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EVENTS = [
    SSEEvent("message_start", '{"a": 1}'),
    SSEEvent("message", "first line\nsecond line"),
    SSEEvent("message", "[DONE]"),
]


def parse(*chunks: bytes, max_event_bytes: int = 1024) -> list[SSEEvent]:
    parser = SSEParser(max_event_bytes=max_event_bytes)
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.finish()


async def chunked(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class TestFeed:
    def test_parses_a_whole_stream(self) -> None:
        assert parse(STREAM) == EVENTS

    def test_same_events_whatever_the_split(self) -> None:
        for cut in range(1, len(STREAM)):
            assert parse(STREAM[:cut], STREAM[cut:]) == EVENTS, cut

    def test_same_events_byte_by_byte(self) -> None:
        assert parse(*(STREAM[i : i + 1] for i in range(len(STREAM)))) == EVENTS

    def test_crlf_line_endings(self) -> None:
        assert parse(STREAM.replace(b"\n", b"\r\n")) == EVENTS

    def test_crlf_split_between_chunks_is_one_line_end(self) -> None:
        crlf = STREAM.replace(b"\n", b"\r\n")
        cut = crlf.index(b"\r\n") + 1
        assert parse(crlf[:cut], crlf[cut:]) == EVENTS

    def test_lone_cr_line_endings(self) -> None:
        assert parse(STREAM.replace(b"\n", b"\r")) == EVENTS

    def test_value_without_space_after_colon(self) -> None:
        assert parse(b"event:ping\ndata:x\n\n") == [SSEEvent("ping", "x")]

    def test_event_without_data_is_not_dispatched(self) -> None:
        assert parse(b"event: ping\n\n: only a comment\n\n") == []

    def test_unfinished_event_at_the_end_is_dropped(self) -> None:
        assert parse(b"data: complete\n\ndata: half") == [SSEEvent("message", "complete")]

    def test_data_larger_than_the_bound_raises(self) -> None:
        with pytest.raises(ProviderError) as caught:
            parse(*[b"data: 0123456789\n"] * 20, max_event_bytes=100)
        assert caught.value.retryable
        assert caught.value.breaker_failure

    def test_line_that_never_ends_raises_instead_of_buffering(self) -> None:
        parser = SSEParser(max_event_bytes=100)
        parser.feed(b"data: " + b"x" * 90)
        with pytest.raises(ProviderError):
            parser.feed(b"x" * 20)

    def test_bound_is_per_event(self) -> None:
        events = parse(*[b"data: 0123456789\n\n"] * 50, max_event_bytes=40)
        assert len(events) == 50

    def test_invalid_utf8_raises(self) -> None:
        with pytest.raises(ProviderError):
            parse(b"data: \xff\xfe\n\n")

    def test_utf8_character_split_between_chunks(self) -> None:
        text = "data: héllo wörld\n\n".encode()
        cut = text.index("é".encode()) + 1
        assert parse(text[:cut], text[cut:]) == [SSEEvent("message", "héllo wörld")]


class TestIterSSE:
    async def test_yields_events_from_chunks(self) -> None:
        events = [
            e async for e in iter_sse(chunked(STREAM[:10], STREAM[10:]), max_event_bytes=1024)
        ]
        assert events == EVENTS

    async def test_final_lone_cr_ends_the_last_event(self) -> None:
        events = [e async for e in iter_sse(chunked(b"data: x\r", b"\r"), max_event_bytes=64)]
        assert events == [SSEEvent("message", "x")]

    async def test_oversized_event_raises(self) -> None:
        with pytest.raises(ProviderError):
            async for _ in iter_sse(chunked(b"data: " + b"x" * 200), max_event_bytes=64):
                pass
