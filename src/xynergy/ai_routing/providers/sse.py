"""Server-Sent Events, parsed incrementally and within a size bound.

Upstreams stream answers as SSE (``text/event-stream``). Chunks arrive cut at
arbitrary byte positions, so the parser keeps the unfinished tail between
chunks; that tail and the event being assembled are bounded so that an
upstream which never ends a line or an event cannot make us buffer without limit.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import NamedTuple

from xynergy.ai_routing.providers.base import ProviderError

__all__ = ["SSEEvent", "SSEParser", "iter_sse"]

_LF = 0x0A


class SSEEvent(NamedTuple):
    """One dispatched event: its type (``message`` unless named) and its data lines."""

    event: str
    data: str


class SSEParser:
    """Feed bytes in, get complete events out (the WHATWG event-stream rules).

    Lines end in ``\\n``, ``\\r\\n`` or ``\\r``; ``data:`` lines of one event are
    joined with ``\\n``; lines starting with ``:`` are comments; ``id`` and
    ``retry`` are ignored (we never reconnect). An event still open when the body
    ends is dropped, as the standard says: callers detect cut streams by the
    protocol's own end marker, never by the end of the body.
    """

    def __init__(self, *, max_event_bytes: int) -> None:
        if max_event_bytes < 1:
            raise ValueError("max_event_bytes must be positive")
        self._max_event_bytes = max_event_bytes
        self._pending = bytearray()
        self._event_type = ""
        # Bounded in bytes, not entries: _data_bytes is checked against max_event_bytes.
        self._data: list[str] = []  # guard: allow XG005 bounded by _data_bytes
        self._data_bytes = 0
        # Where the unfinished tail has already been searched for a line end, so a
        # long line arriving in many chunks is scanned once, not once per chunk.
        self._scanned = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk``; raises ProviderError past the bound."""
        self._pending += chunk
        events: list[SSEEvent] = []
        start = 0
        pending = self._pending
        while True:
            end, next_start = _line_end(pending, max(start, self._scanned))
            if end < 0:
                break
            event = self._line(bytes(pending[start:end]))
            if event is not None:
                events.append(event)
            start = next_start
        del pending[:start]
        self._scanned = len(pending) - 1 if pending.endswith(b"\r") else len(pending)
        if len(pending) + self._data_bytes > self._max_event_bytes:
            raise ProviderError.unreachable(
                f"stream event larger than {self._max_event_bytes} bytes"
            )
        return events

    def finish(self) -> list[SSEEvent]:
        """Events completed by the end of the body (a final lone ``\\r`` ends a line)."""
        if self._pending == b"\r":
            self._pending.clear()
            self._scanned = 0
            event = self._line(b"")
            return [event] if event is not None else []
        return []

    def _line(self, raw: bytes) -> SSEEvent | None:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProviderError.unreachable("stream is not UTF-8") from exc
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
            self._data_bytes += len(raw) + 1
            if self._data_bytes > self._max_event_bytes:
                raise ProviderError.unreachable(
                    f"stream event larger than {self._max_event_bytes} bytes"
                )
        elif field == "event":
            self._event_type = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        event_type, data = self._event_type or "message", self._data
        self._event_type, self._data, self._data_bytes = "", [], 0
        if not data:
            return None
        return SSEEvent(event_type, "\n".join(data))


def _line_end(buffer: bytearray, search_from: int) -> tuple[int, int]:
    """Where the current line ends and the next begins, or (-1, -1) if unfinished."""
    lf = buffer.find(b"\n", search_from)
    cr = buffer.find(b"\r", search_from, lf if lf >= 0 else len(buffer))
    if cr < 0:
        return (lf, lf + 1) if lf >= 0 else (-1, -1)
    if cr + 1 == len(buffer):
        # A trailing \r may be the first half of \r\n: wait for the next chunk.
        return -1, -1
    return cr, cr + 2 if buffer[cr + 1] == _LF else cr + 1


async def iter_sse(
    chunks: AsyncIterable[bytes], *, max_event_bytes: int
) -> AsyncIterator[SSEEvent]:
    """The events of a body; pass ``response.content.iter_any()``.

    Raises:
        ProviderError: an event (or an unfinished line) exceeds ``max_event_bytes``,
            or the body is not UTF-8. Transport errors propagate unchanged.
    """
    parser = SSEParser(max_event_bytes=max_event_bytes)
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.finish():
        yield event
