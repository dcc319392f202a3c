"""The unit of work and the engine's per-connection settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import on_commit, unit_of_work
from xynergy.platform.tenancy.models import ApiKey, Tenant


class Boom(Exception):
    """Raised inside a unit of work to make it fail."""


@pytest.fixture
async def engine(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_from_settings(make_settings(database_url=database_url))
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def _tenant_names(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessionmaker() as session:
        return list((await session.scalars(select(Tenant.name).order_by(Tenant.name))).all())


class TestUnitOfWork:
    async def test_commits_on_success(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        async with unit_of_work(sessionmaker) as session:
            session.add(Tenant(name="kept"))
            await session.flush()
        assert await _tenant_names(sessionmaker) == ["kept"]

    async def test_rolls_back_on_exception(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async def fail() -> None:
            async with unit_of_work(sessionmaker) as session:
                session.add(Tenant(name="flushed"))
                await session.flush()
                session.add(Tenant(name="pending"))
                raise Boom

        with pytest.raises(Boom):
            await fail()
        assert await _tenant_names(sessionmaker) == []

    async def test_rolls_back_on_cancellation(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        flushed = asyncio.Event()

        async def work() -> None:
            async with unit_of_work(sessionmaker) as session:
                session.add(Tenant(name="cancelled"))
                await session.flush()
                flushed.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(work())
        await flushed.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await _tenant_names(sessionmaker) == []


class TestOnCommit:
    async def test_runs_after_the_commit(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        seen: list[list[str]] = []

        async def callback() -> None:
            # Another session must already see the data: the commit came first.
            seen.append(await _tenant_names(sessionmaker))

        async with unit_of_work(sessionmaker) as session:
            session.add(Tenant(name="durable"))
            await session.flush()
            on_commit(session, callback)
            assert seen == []
        assert seen == [["durable"]]

    async def test_runs_every_callback_in_order(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        calls: list[int] = []

        def recorder(n: int) -> Callable[[], Awaitable[None]]:
            async def callback() -> None:
                calls.append(n)

            return callback

        async with unit_of_work(sessionmaker) as session:
            for n in range(3):
                on_commit(session, recorder(n))
        assert calls == [0, 1, 2]

    async def test_never_runs_on_rollback(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        calls: list[str] = []

        async def callback() -> None:
            calls.append("ran")

        async def fail() -> None:
            async with unit_of_work(sessionmaker) as session:
                session.add(Tenant(name="doomed"))
                await session.flush()
                on_commit(session, callback)
                raise Boom

        with pytest.raises(Boom):
            await fail()
        assert calls == []

    async def test_never_runs_when_the_commit_itself_fails(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        async with unit_of_work(sessionmaker) as session:
            session.add(Tenant(name="taken"))
        calls: list[str] = []

        async def callback() -> None:
            calls.append("ran")

        async def duplicate() -> None:
            async with unit_of_work(sessionmaker) as session:
                on_commit(session, callback)
                # Not flushed: the duplicate only fails at commit.
                session.add(Tenant(name="taken"))

        with pytest.raises(IntegrityError):
            await duplicate()
        assert calls == []
        assert await _tenant_names(sessionmaker) == ["taken"]

    async def test_callbacks_do_not_leak_into_the_next_unit_of_work(
        self, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        calls: list[str] = []

        async def callback() -> None:
            calls.append("ran")

        async def fail() -> None:
            async with unit_of_work(sessionmaker) as session:
                on_commit(session, callback)
                raise Boom

        with pytest.raises(Boom):
            await fail()
        async with unit_of_work(sessionmaker):
            pass
        assert calls == []


@pytest.fixture
async def sqlite_engine(make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncEngine]:
    engine = create_engine_from_settings(make_settings())
    try:
        yield engine
    finally:
        await engine.dispose()


async def _pragma(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text("PRAGMA " + name))).scalar_one()


class TestSqliteEngine:
    async def test_journal_mode_is_wal(self, sqlite_engine: AsyncEngine) -> None:
        assert str(await _pragma(sqlite_engine, "journal_mode")).lower() == "wal"

    async def test_foreign_keys_are_on(self, sqlite_engine: AsyncEngine) -> None:
        assert await _pragma(sqlite_engine, "foreign_keys") == 1

    async def test_synchronous_is_normal(self, sqlite_engine: AsyncEngine) -> None:
        normal = 1
        assert await _pragma(sqlite_engine, "synchronous") == normal

    async def test_busy_timeout_comes_from_settings(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        engine = create_engine_from_settings(make_settings(sqlite_busy_timeout_ms=1234))
        try:
            assert await _pragma(engine, "busy_timeout") == 1234
        finally:
            await engine.dispose()

    async def test_every_pooled_connection_is_tuned(self, sqlite_engine: AsyncEngine) -> None:
        async with sqlite_engine.connect() as first, sqlite_engine.connect() as second:
            for connection in (first, second):
                foreign_keys = await connection.execute(text("PRAGMA foreign_keys"))
                assert foreign_keys.scalar_one() == 1

    async def test_foreign_keys_are_enforced(self, sqlite_engine: AsyncEngine) -> None:
        orphan = {
            "id": "0" * 32,
            "tenant_id": "f" * 32,
            "name": "orphan",
            "key_hash": "0" * 64,
            "display_prefix": "xyn_live_000000",
            "last4": "0000",
            "environment": "live",
            "scopes": ["content:read"],
        }
        sessionmaker = async_sessionmaker(sqlite_engine)

        async def insert_orphan() -> None:
            async with unit_of_work(sessionmaker) as session:
                await session.execute(insert(ApiKey), [orphan])

        with pytest.raises(IntegrityError):
            await insert_orphan()
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0
