"""Shared fixtures: real SQLite, PostgreSQL and Redis.

PostgreSQL and Redis suites skip with a clear message on a laptop without the
servers, and fail instead of skipping under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis as redis_sync
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import create_async_engine

from xynergy.migrations.models import Base
from xynergy.platform.config import Settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine.host import DbosHost

pytest_plugins = ["tests.guards.redis_commands", "tests.guards.sql_bounds"]

CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get(
    "XYNERGY_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("XYNERGY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INTERNAL_SECRET = "test-internal-secret-" + "x" * 32


# --- the user's data dir --------------------------------------------------------
# Settings default to the user data directory: no test may write to the real one.
# Every process the suite starts inherits these (live_server sets its own data dir).
_DATA_HOME = pytest.StashKey[tuple[Path, dict[str, str | None]]]()
_DATA_DIR_VARIABLES = ("XDG_DATA_HOME", "XYNERGY_DATA_DIR")


def pytest_configure(config: pytest.Config) -> None:
    home = Path(tempfile.mkdtemp(prefix="xynergy-tests-data-home-"))
    config.stash[_DATA_HOME] = (home, {name: os.environ.get(name) for name in _DATA_DIR_VARIABLES})
    os.environ["XDG_DATA_HOME"] = str(home)
    os.environ["XYNERGY_DATA_DIR"] = str(home / "xynergy")


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_DATA_HOME, None)
    if saved is None:
        return
    home, previous = saved
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(home, ignore_errors=True)


def _unavailable(what: str, why: object) -> None:
    if CI:
        pytest.fail(f"{what} is required when CI=true but is unreachable: {why}", pytrace=False)
    pytest.skip(f"{what} not reachable ({why}); these tests run in CI (see .ci/run)")


# --- PostgreSQL -------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_ADMIN_URL), timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    name = "xyn_test_" + uuid.uuid4().hex[:12]
    try:
        # The name is generated above from hex digits only; CREATE DATABASE takes
        # no bound parameters.
        asyncio.run(_pg_admin("CREATE DATABASE " + name))  # guard: allow XG001 generated identifier
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable("PostgreSQL", exc)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    upgrade_to_head(Settings(database_url=url))
    # DBOS's schema too, made once here with nothing else running: made by the first
    # test app that launches DBOS, its CREATE INDEX CONCURRENTLY waited for that
    # app's own open transactions while DBOS's launch held the event loop (a hang).
    asyncio.run(_create_dbos_system_database(Settings(database_url=url)))
    yield url
    drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
    asyncio.run(_pg_admin(drop))  # guard: allow XG001 generated identifier


async def _empty_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(delete(table))
            # DBOS's tables (the System Runtime's engine): the next test's engine
            # must not recover this test's runs. Emptied, not dropped: re-creating
            # the schema would cost every later test with the runtime a migration.
            dbos_tables = (
                await connection.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'xynergy_dbos'"
                        # Kept: the schema's version, and the queue's registration (a
                        # queue DBOS meets as new waits up to 1 s to be served).
                        " AND tablename NOT IN ('dbos_migrations', 'queues', 'application_versions')"
                    )
                )
            ).scalars()
            names = ", ".join(f'xynergy_dbos."{name}"' for name in dbos_tables)
            if names:
                # Names from the catalogue, quoted; TRUNCATE takes no bound parameters.
                await connection.execute(
                    text("TRUNCATE " + names + " CASCADE")
                )  # guard: allow XG001 catalogue names
    finally:
        await engine.dispose()


# --- SQLite -------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied per test (faster than migrating each time)."""
    data_dir = tmp_path_factory.mktemp("sqlite-template")
    settings = Settings(data_dir=data_dir)
    upgrade_to_head(settings)
    # DBOS's system database too (the System Runtime's engine), created once:
    # migrating it per test would cost every test with the runtime a few 100 ms.
    asyncio.run(_create_dbos_system_database(settings))
    return data_dir / "xynergy.db"


async def _create_dbos_system_database(settings: Settings) -> None:
    await DbosHost.acquire(settings, RuntimeSettings())
    await DbosHost.release()


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "data" / "xynergy.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sqlite_template, target)
    dbos_file = sqlite_template.with_suffix(".dbos.sqlite")
    shutil.copy(dbos_file, target.with_suffix(".dbos.sqlite"))
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    asyncio.run(_empty_tables(url))


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """PostgreSQL only (for tests about multiple replicas sharing one database)."""
    yield postgres_url
    asyncio.run(_empty_tables(postgres_url))


# --- Redis --------------------------------------------------------------------


@pytest.fixture
def redis_url() -> str:
    """The test Redis; the test gets a unique key prefix through ``redis_prefix``."""
    client = redis_sync.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis_sync.RedisError as exc:
        _unavailable("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"xyn:test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis_sync.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=prefix + "*", count=500):
            client.delete(key)
    finally:
        client.close()


# --- settings -----------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path, sqlite_url: str) -> Callable[..., Settings]:
    """Settings for a test app: embedded defaults unless overridden."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "data_dir": tmp_path / "data",
            "database_url": sqlite_url,
            "internal_token_secret": INTERNAL_SECRET,
            "access_log": False,
            # Freezing is process-wide: across hundreds of test apps it would only
            # keep their garbage alive.
            "gc_freeze_after_startup": False,
        }
        values.update(overrides)
        return Settings(**values)

    return build
