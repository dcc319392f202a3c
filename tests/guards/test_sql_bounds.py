"""The SQL bounds guard (tests/guards/sql_bounds.py) tells bounded queries from
unbounded ones, and a test whose platform code issues an unbounded one fails."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, exists, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from tests.guards import sql_bounds
from tests.guards.sql_bounds import classify, failure_message, recording
from xynergy.platform import pagination
from xynergy.platform.pagination import PageParams
from xynergy.platform.tenancy import repository as tenancy_repository
from xynergy.platform.tenancy.models import ApiKey, Tenant
from xynergy.platform.tenancy.repository import TenantRepository

pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _bounded(statement: Any) -> bool:
    return classify(statement).bounded


class TestUnbounded:
    def test_a_model_select_without_limit(self) -> None:
        verdict = classify(select(Tenant))
        assert not verdict.bounded
        assert "tenants" in verdict.reason

    def test_a_filter_on_a_column_that_is_not_unique(self) -> None:
        assert not _bounded(select(ApiKey).where(ApiKey.tenant_id == "t"))

    def test_group_by_without_limit(self) -> None:
        verdict = classify(select(ApiKey.tenant_id, func.count()).group_by(ApiKey.tenant_id))
        assert not verdict.bounded
        assert "GROUP BY" in verdict.reason

    def test_a_window_function_is_not_an_aggregate(self) -> None:
        assert not _bounded(select(ApiKey.id, func.count().over()))

    def test_one_to_many_join_from_a_pinned_row(self) -> None:
        query = select(Tenant, ApiKey).join(ApiKey, ApiKey.tenant_id == Tenant.id)
        assert not _bounded(query.where(Tenant.id == "t"))

    def test_a_union_with_one_unbounded_part(self) -> None:
        query = select(Tenant.id).where(Tenant.id == "t").union(select(ApiKey.tenant_id))
        assert not _bounded(query)

    def test_raw_sql_on_a_platform_table_without_limit(self) -> None:
        assert not _bounded(text("SELECT id FROM tenants"))


class TestBounded:
    def test_limit(self) -> None:
        assert _bounded(select(Tenant).limit(10))

    def test_group_by_with_limit(self) -> None:
        query = select(ApiKey.tenant_id, func.count()).group_by(ApiKey.tenant_id).limit(50)
        assert _bounded(query)

    def test_aggregates_without_group_by(self) -> None:
        assert _bounded(select(func.count()).select_from(Tenant))
        assert _bounded(select(func.coalesce(func.max(ApiKey.created_at), None)))

    def test_primary_key_lookup(self) -> None:
        assert _bounded(select(Tenant).where(Tenant.id == "t"))

    def test_unique_column_lookup(self) -> None:
        assert _bounded(select(ApiKey).where(ApiKey.key_hash == "h", ApiKey.revoked_at.is_(None)))

    def test_primary_keys_in_a_parameter_list(self) -> None:
        assert _bounded(select(ApiKey).where(ApiKey.id.in_(["a", "b"])))

    def test_many_to_one_join_from_a_pinned_row(self) -> None:
        query = select(ApiKey, Tenant).join(Tenant, Tenant.id == ApiKey.tenant_id)
        assert _bounded(query.where(ApiKey.id == "k"))

    def test_exists(self) -> None:
        assert _bounded(select(exists().where(ApiKey.tenant_id == "t")))


class TestOutOfScope:
    def test_writes(self) -> None:
        assert _bounded(Tenant.__table__.delete())

    def test_tables_that_are_not_the_platforms(self) -> None:
        dbos_status = table("workflow_status", column("workflow_uuid"), schema="xynergy_dbos")
        assert _bounded(select(dbos_status))
        assert _bounded("SELECT tablename FROM pg_tables WHERE schemaname = 'xynergy_dbos'")


@pytest.fixture
async def session(sqlite_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(sqlite_url)
    try:
        async with AsyncSession(engine) as session:
            session.add_all(Tenant(name=f"tenant {number}") for number in range(3))
            await session.flush()
            yield session
    finally:
        await engine.dispose()


def _keyset_page_without_limit(*args: Any, **kwargs: Any) -> Any:
    return pagination.keyset_page(*args, **kwargs).limit(None)


class TestRecording:
    async def test_a_repository_query_without_its_limit_is_reported(
        self, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tenancy_repository, "keyset_page", _keyset_page_without_limit)
        with recording() as violations:
            await TenantRepository(session).page(PageParams(limit=10, after=None))
        message = failure_message(violations)
        assert message is not None
        assert "FROM tenants" in message
        assert "xynergy.platform.tenancy.repository.TenantRepository.page" in message
        assert ".limit(" in message

    async def test_the_same_query_with_its_limit_is_not(self, session: AsyncSession) -> None:
        with recording() as violations:
            await TenantRepository(session).page(PageParams(limit=10, after=None))
        assert failure_message(violations) is None

    async def test_a_tests_own_query_is_not_the_platforms(self, session: AsyncSession) -> None:
        with recording() as violations:
            await session.scalars(select(Tenant))
        assert violations == []

    async def test_an_allowed_function_is_not_reported(
        self, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(tenancy_repository, "keyset_page", _keyset_page_without_limit)
        allowed = {"xynergy.platform.tenancy.repository.TenantRepository.page": "a test"}
        monkeypatch.setattr(sql_bounds, "ALLOWED_UNBOUNDED", allowed)
        with recording() as violations:
            await TenantRepository(session).page(PageParams(limit=10, after=None))
        assert violations == []


def test_the_plugin_fails_a_test_that_issued_an_unbounded_select(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole pytest run with the plugin: the test without the LIMIT errors at teardown."""
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    # Only the plugin under test: the inner run starts faster without the others.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        textwrap.dedent(
            """
            import asyncio

            from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

            from xynergy.migrations.models import Base
            from xynergy.platform import pagination
            from xynergy.platform.pagination import PageParams
            from xynergy.platform.tenancy import repository
            from xynergy.platform.tenancy.models import Tenant


            async def _page(path):
                engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
                async with engine.begin() as connection:
                    await connection.run_sync(Base.metadata.create_all)
                async with AsyncSession(engine) as session:
                    session.add(Tenant(name="one"))
                    await session.flush()
                    await repository.TenantRepository(session).page(PageParams(10, None))
                await engine.dispose()


            def test_with_limit(tmp_path):
                asyncio.run(_page(tmp_path / "db.sqlite"))


            def test_without_limit(tmp_path, monkeypatch):
                def unlimited(*args, **kwargs):
                    return pagination.keyset_page(*args, **kwargs).limit(None)

                monkeypatch.setattr(repository, "keyset_page", unlimited)
                asyncio.run(_page(tmp_path / "db.sqlite"))
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "-p", "tests.guards.sql_bounds", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_without_limit*",
            "*1 unbounded SELECT(s) issued by the platform during this test*",
            "*TenantRepository.page*no LIMIT, no aggregate, no unique-key equality on tenants",
        ]
    )
