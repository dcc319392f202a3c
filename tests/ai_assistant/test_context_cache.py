"""The hot-context cache: used when current, rebuilt from SQL when not, in Redis when configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as redis_async
from sqlalchemy import event

from tests.ai_assistant.harness import AssistantApi, assistant_api
from tests.ai_routing.fakes import FakeOpenAI
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import NAMESPACE, ContextCache
from xynergy.platform.config import Settings


class TestContextCache:
    async def test_second_replica_continues_from_redis_and_sql(
        self,
        make_settings: Callable[..., Settings],
        fake_catalogue: None,
        upstream: FakeOpenAI,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        ttl = AssistantSettings().context_cache_ttl_seconds
        async with assistant_api(settings) as first:
            turn = (await first.send("remember the launch date")).json()
            conversation_id = turn["conversation_id"]
            cached = await ContextCache(first.platform.cache, ttl).recall(
                tenant_id=first.tenant_id, conversation_id=conversation_id
            )
            assert cached is not None
            assert cached.last_seq == turn["reply"]["seq"]
            assert [t.role for t in cached.window.turns] == ["user", "assistant"]
        client = redis_async.Redis.from_url(redis_url)
        try:
            keys = [key async for key in client.scan_iter(match=f"{redis_prefix}*{NAMESPACE}*")]
            assert len(keys) == 1
            assert 0 < await client.ttl(keys[0]) <= ttl
        finally:
            await client.aclose()
        # Another process (same database and Redis) carries the conversation on.
        async with assistant_api(settings) as second:
            second_headers = first.headers  # the same key, verified by the new process
            response = await second.send("and the budget?", conversation_id, headers=second_headers)
            assert response.status_code == 200, response.text
        prompt = upstream.requests[-1]["messages"]
        assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user"]
        assert prompt[1]["content"] == "remember the launch date"


class TestTurnStatements:
    async def test_a_turn_in_a_hot_conversation_reads_nothing_and_writes_three_rows(
        self, api: AssistantApi
    ) -> None:
        """The cached context is used as stored (no rebuild from SQL), and the turn's
        own SQL is one conditional UPDATE and the two messages, nothing else."""
        first = (await api.send("remember the launch date")).json()
        conversation_id = first["conversation_id"]
        assert (await api.send("and the budget?", conversation_id)).status_code == 200
        seen: list[str] = []

        def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if "assistant_" in statement:
                seen.append(" ".join(statement.split()[:3]))

        engine = api.platform.engine.sync_engine
        event.listen(engine, "before_cursor_execute", note)
        try:
            response = await api.send("and the channels?", conversation_id)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert response.status_code == 200, response.text
        assert seen == [
            "UPDATE assistant_conversations SET",
            "INSERT INTO assistant_messages",
            "INSERT INTO assistant_messages",
        ]
