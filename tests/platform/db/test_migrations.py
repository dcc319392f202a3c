"""Migrations: up, down and up again on both databases, with no drift from the models.

These are plain (sync) tests: Alembic's env.py runs its own event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import xynergy.migrations
from xynergy.migrations.models import Base
from xynergy.platform.db.migrate import alembic_config

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get(
    "XYNERGY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
VERSIONS = Path(xynergy.migrations.__file__).resolve().parent / "versions"
FILE_NAME = re.compile(
    r"^(?P<date>\d{8})_(?P<rev>[0-9a-z]+)_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.py$"
)
MODEL_TABLES = set(Base.metadata.tables)


def _revision_files() -> list[Path]:
    return sorted(p for p in VERSIONS.glob("*.py") if p.name != "__init__.py")


async def _pg_admin(statement: str) -> None:
    dsn = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = "xyn_mig_" + uuid.uuid4().hex[:12]
    try:
        # The name is generated from hex digits; CREATE DATABASE takes no parameters.
        asyncio.run(_pg_admin("CREATE DATABASE " + name))  # guard: allow XG001 generated name
    except (OSError, asyncpg.PostgresError) as exc:
        if CI:
            pytest.fail(f"PostgreSQL is required when CI=true: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL not reachable ({exc})")
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
    asyncio.run(_pg_admin(drop))  # guard: allow XG001 generated name


@pytest.fixture(
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def empty_database_url(request: pytest.FixtureRequest) -> str:
    """An unmigrated database: SQLite file or a throwaway PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "empty_postgres_url"
    return str(request.getfixturevalue(fixture))


def _inspect(url: str, read: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(url: str) -> set[str]:
    return set(_inspect(url, lambda c: inspect(c).get_table_names()))


def _drift(url: str) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    return list(_inspect(url, compare))


def _current_revision(url: str) -> str | None:
    return _inspect(url, lambda c: MigrationContext.configure(c).get_current_revision())


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


class TestUpgradeAndDowngrade:
    def test_upgrade_creates_every_model_table(self, empty_database_url: str) -> None:
        command.upgrade(alembic_config(empty_database_url), "head")
        assert _tables(empty_database_url) >= MODEL_TABLES
        assert _current_revision(empty_database_url) == _head()

    def test_schema_matches_the_models(self, empty_database_url: str) -> None:
        command.upgrade(alembic_config(empty_database_url), "head")
        assert _drift(empty_database_url) == []

    def test_downgrade_to_base_then_upgrade_again(self, empty_database_url: str) -> None:
        config = alembic_config(empty_database_url)
        command.upgrade(config, "head")

        command.downgrade(config, "base")
        assert _tables(empty_database_url) & MODEL_TABLES == set()
        assert _current_revision(empty_database_url) is None

        command.upgrade(config, "head")
        assert _tables(empty_database_url) >= MODEL_TABLES
        assert _drift(empty_database_url) == []


class TestRevisionFiles:
    def test_there_is_at_least_one_revision(self) -> None:
        assert _revision_files()

    @pytest.mark.parametrize("path", _revision_files(), ids=lambda p: p.name)
    def test_file_is_named_date_revision_slug(self, path: Path) -> None:
        match = FILE_NAME.match(path.name)
        assert match, f"{path.name} is not YYYYMMDD_<rev>_<slug>.py"
        dt.datetime.strptime(match["date"], "%Y%m%d")  # a real calendar date
        declared = re.search(r'^revision: str = "([^"]+)"', path.read_text(), re.MULTILINE)
        assert declared is not None
        assert declared.group(1) == match["rev"]

    def test_history_is_one_linear_chain(self) -> None:
        scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
        assert len(scripts.get_heads()) == 1
        assert len(scripts.get_bases()) == 1
        revisions = list(scripts.walk_revisions())
        assert len(revisions) == len(_revision_files())

    def test_new_revisions_get_the_same_file_name_pattern(self) -> None:
        template = alembic_config("sqlite://").get_main_option("file_template")
        rendered = (template or "") % {
            "year": 2026,
            "month": 11,
            "day": 26,
            "rev": "0002",
            "slug": "add_widgets",
        }
        assert FILE_NAME.match(rendered + ".py")
