"""Memory: the only per-conversation state in process is the bounded context cache.

100,000 conversations with one message each are written to SQL, then every one
goes through the path that caches a conversation's context after a turn. The
process must not grow with them: RSS grows by less than 64 MB and the cache
holds at most its configured number of entries.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.ai_assistant.harness import AssistantApi, assistant_api
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import ContextCache
from xynergy.ai_assistant.context.window import Turn, Window
from xynergy.ai_assistant.models import Message
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work

CONVERSATIONS = 100_000
CACHE_ENTRIES = 10_000
RSS_GROWTH_MAX = 64 * 1024 * 1024
# Long enough that keeping every context would cost far more than the bound allows.
MESSAGE = "Which of my keywords are trending this week, and why? " * 20
BATCH = 5_000  # rows read at a time


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.fixture
async def api(make_settings: Callable[..., Settings]) -> AsyncIterator[AssistantApi]:
    async with assistant_api(make_settings(cache_memory_max_entries=CACHE_ENTRIES)) as running:
        yield running


# Written through the driver's executemany: the ORM's bulk insert of 200,000 rows
# would take most of the test's time. Constant statements, bound parameters.
_INSERT_CONVERSATION = (
    "INSERT INTO assistant_conversations (id, tenant_id, key_id, title, message_count, "
    "next_seq, created_at, updated_at, last_activity_at) VALUES (?, ?, ?, '', 1, 1, ?, ?, ?)"
)
_INSERT_MESSAGE = (
    "INSERT INTO assistant_messages (id, tenant_id, conversation_id, seq, role, content, "
    "status, created_at) VALUES (?, ?, ?, 0, 'user', ?, 'complete', ?)"
)


async def _insert(api: AssistantApi) -> None:
    now = utcnow().isoformat(sep=" ")
    key_id = new_id()
    ids = [new_id() for _ in range(CONVERSATIONS)]
    async with unit_of_work(api.platform.sessionmaker) as session:
        connection = await session.connection()
        await connection.exec_driver_sql(
            _INSERT_CONVERSATION, [(i, api.tenant_id, key_id, now, now, now) for i in ids]
        )
        await connection.exec_driver_sql(
            _INSERT_MESSAGE, [(new_id(), api.tenant_id, i, MESSAGE, now) for i in ids]
        )


class TestManyConversations:
    async def test_rss_and_cache_stay_bounded(self, api: AssistantApi) -> None:
        await _insert(api)
        cache = ContextCache(api.platform.cache, AssistantSettings().context_cache_ttl_seconds)
        gc.collect()
        before = rss_bytes()
        cached = 0
        async with api.platform.sessionmaker() as session:
            rows = await session.stream(
                select(Message.conversation_id, Message.seq, Message.role, Message.content)
                .where(Message.tenant_id == api.tenant_id)
                .execution_options(yield_per=BATCH)
            )
            async for conversation_id, seq, role, content in rows:
                window = Window(summary=None, summary_through=-1, turns=[Turn(seq, role, content)])
                await cache.remember(
                    tenant_id=api.tenant_id,
                    conversation_id=conversation_id,
                    last_seq=seq,
                    window=window,
                )
                cached += 1
        gc.collect()
        growth = rss_bytes() - before
        assert cached == CONVERSATIONS
        shared = await api.platform.cache._shared.get_keys_count()  # noqa: SLF001
        local = len(api.platform.cache._local)  # noqa: SLF001
        assert shared <= CACHE_ENTRIES, shared
        assert local <= CACHE_ENTRIES, local
        assert growth < RSS_GROWTH_MAX, f"RSS grew by {growth / 2**20:.1f} MiB"
        # The newest contexts are still served from the cache.
        recalled = await cache.recall(tenant_id=api.tenant_id, conversation_id=conversation_id)
        assert recalled is not None
        assert recalled.window.turns[0].content == MESSAGE
