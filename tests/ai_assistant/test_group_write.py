"""Replies' rows committed in groups: one transaction for the rows waiting together,
a failing row failing only its own write."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.ai_assistant.harness import AssistantApi
from xynergy.ai_assistant.messages.group_write import GroupWriter, Job
from xynergy.ai_assistant.models import Conversation

WRITES = 20


def _conversation(api: AssistantApi, title: str) -> Conversation:
    return Conversation(tenant_id=api.tenant_id, key_id="group-write", title=title)


async def _count(api: AssistantApi) -> int:
    async with api.platform.sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).where(Conversation.key_id == "group-write")
        )
    return int(found or 0)


class TestGroupWriter:
    async def test_writes_waiting_together_share_one_transaction(self, api: AssistantApi) -> None:
        writer = GroupWriter(max_group=WRITES)
        # The sessions themselves, kept alive (ids of freed objects are reused).
        sessions: list[AsyncSession] = []

        def job(index: int) -> Job[int]:
            async def write(session: AsyncSession) -> int:
                sessions.append(session)
                session.add(_conversation(api, f"c{index}"))
                await session.flush()
                return index

            return write

        results = await asyncio.gather(
            *(writer.write(api.platform.sessionmaker, job(i)) for i in range(WRITES))
        )

        assert results == list(range(WRITES))
        assert await _count(api) == WRITES
        # The first write commits alone; every write queued meanwhile goes in one more.
        transactions = len({id(session) for session in sessions})
        assert transactions <= 2, transactions

    async def test_a_failing_write_fails_alone(self, api: AssistantApi) -> None:
        writer = GroupWriter(max_group=WRITES)

        def job(index: int) -> Job[int]:
            async def write(session: AsyncSession) -> int:
                session.add(_conversation(api, f"c{index}"))
                await session.flush()
                if index == 3:
                    raise ValueError("bad row")
                return index

            return write

        results = await asyncio.gather(
            *(writer.write(api.platform.sessionmaker, job(i)) for i in range(6)),
            return_exceptions=True,
        )

        assert [r for r in results if isinstance(r, int)] == [0, 1, 2, 4, 5]
        with pytest.raises(ValueError, match="bad row"):
            raise results[3]  # type: ignore[misc]
        assert await _count(api) == 5
