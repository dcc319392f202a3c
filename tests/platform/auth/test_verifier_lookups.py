"""Concurrent first uses of a key share one database read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event

from tests.helpers import issue_key, running
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.auth.keys import generate_key
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.runtime import Platform

CONCURRENT_FIRST_USES = 200
# Fewer connections than callers: one read per caller would queue on the pool.
POOL_SIZE = 2


@pytest.fixture
async def platform(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Platform]:
    settings = make_settings(
        database_url=database_url, database_pool_size=POOL_SIZE, database_max_overflow=0
    )
    app = create_admin_app(settings)
    async with running(app):
        yield app.state.platform


@pytest.fixture
def key_reads(platform: Platform) -> Iterator[list[str]]:
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM api_keys" in statement:
            reads.append(statement)

    event.listen(platform.engine.sync_engine, "before_cursor_execute", record)
    yield reads
    event.remove(platform.engine.sync_engine, "before_cursor_execute", record)


class TestFirstUse:
    async def test_concurrent_first_uses_of_a_key_read_it_once(
        self, platform: Platform, key_reads: list[str]
    ) -> None:
        _tenant, issued = await issue_key(platform)
        key_reads.clear()
        contexts = await asyncio.gather(
            *(platform.key_verifier.verify(issued.secret) for _ in range(CONCURRENT_FIRST_USES))
        )
        assert {context.key_id for context in contexts} == {issued.key.id}
        assert len(key_reads) == 1

    async def test_concurrent_uses_of_an_unknown_key_are_all_refused_after_one_read(
        self, platform: Platform, key_reads: list[str]
    ) -> None:
        _tenant, issued = await issue_key(platform)
        # Same shape and checksum as a real key, but never issued.
        unknown = generate_key().plaintext
        key_reads.clear()
        results = await asyncio.gather(
            *(platform.key_verifier.verify(unknown) for _ in range(CONCURRENT_FIRST_USES)),
            return_exceptions=True,
        )
        assert all(isinstance(result, Unauthorized) for result in results)
        assert len(key_reads) == 1
        assert (await platform.key_verifier.verify(issued.secret)).key_id == issued.key.id
