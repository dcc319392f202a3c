"""Raw request bodies already parsed: what a cache hit needs without parsing again.

Parsing and validating a body, then normalising it, is a pure function of its
bytes and the settings, so the result can be remembered for as long as the
process runs without ever going stale. A repeated body (the common case for a
cache hit) then goes straight to the cache lookup. Small bodies only, and a
bounded number of them, so the memory is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

from xynergy.ai_routing.routing.requests import ChatRequest

__all__ = ["ParsedBody", "RequestMemo"]


@dataclass(frozen=True, slots=True)
class ParsedBody:
    chat: ChatRequest
    stream: bool


class RequestMemo:
    """``(endpoint, raw body) -> ParsedBody``, bounded in entries and body size."""

    def __init__(self, *, max_entries: int, max_body_bytes: int) -> None:
        self._parsed: LRUCache[tuple[str, bytes], ParsedBody] = LRUCache(max_entries)
        self._max_body_bytes = max_body_bytes

    def get(self, endpoint: str, raw: bytes) -> ParsedBody | None:
        if len(raw) > self._max_body_bytes:
            return None
        return self._parsed.get((endpoint, raw))

    def remember(self, endpoint: str, raw: bytes, parsed: ParsedBody) -> None:
        if self._parsed.maxsize and len(raw) <= self._max_body_bytes:
            self._parsed[(endpoint, raw)] = parsed
