"""Hot contexts in the platform cache: bounded (LRU) and expiring (TTL).

The only per-conversation state outside SQL. Each entry is one conversation's
window (summary and recent turns, themselves bounded by the token budget) and
the last position it reflects; storing it again on every turn refreshes its TTL.
A stale or missing entry only costs a rebuild from SQL. With Redis configured
the entry lives there (L2) and any replica can continue the conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from xynergy.ai_assistant.context.window import Turn, Window
from xynergy.platform.cache import PlatformCache

__all__ = ["NAMESPACE", "CachedWindow", "ContextCache"]

NAMESPACE = "assistant-context"


@dataclass(frozen=True, slots=True)
class CachedWindow:
    last_seq: int
    window: Window


class ContextCache:
    """Per-conversation windows, keyed by tenant and conversation."""

    def __init__(self, cache: PlatformCache, ttl_seconds: float) -> None:
        self._cache = cache
        self._ttl = ttl_seconds

    async def recall(self, *, tenant_id: str, conversation_id: str) -> CachedWindow | None:
        text = await self._cache.lookup_json(NAMESPACE, tenant_id, [conversation_id], ttl=self._ttl)
        if text is None:
            return None
        value = json.loads(text)
        window = Window(
            summary=value["summary"],
            summary_through=value["summary_through"],
            turns=[Turn(seq, role, content) for seq, role, content in value["turns"]],
        )
        return CachedWindow(last_seq=value["last_seq"], window=window)

    async def remember(
        self, *, tenant_id: str, conversation_id: str, last_seq: int, window: Window
    ) -> None:
        value = {
            "last_seq": last_seq,
            "summary": window.summary,
            "summary_through": window.summary_through,
            "turns": [[turn.seq, turn.role, turn.content] for turn in window.turns],
        }
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        await self._cache.store_json(NAMESPACE, tenant_id, [conversation_id], text, ttl=self._ttl)
