"""Opening the configured database for a command, and naming tenants.

A command never runs against a database whose schema is not the one this code
expects: it says ``run `xynergy migrate``` instead of failing on the first
query. A SQLite file that does not exist is not created by asking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from xynergy.cli_kit.errors import migrate_hint
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings, get_settings
from xynergy.platform.db.busy import database_busy
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.migrate import read_schema_state
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound
from xynergy.platform.tenancy.models import Tenant
from xynergy.platform.tenancy.repository import TenantRepository

__all__ = [
    "OPERATOR_ALIAS",
    "describe_database",
    "open_migrated_engine",
    "require_migrated",
    "resolve_tenant",
    "schema_problem",
    "sqlite_file",
    "with_session",
]

ResultT = TypeVar("ResultT")

# What ``--tenant`` accepts for the operator tenant, whatever its id.
OPERATOR_ALIAS = "operator"
_IN_MEMORY = ":memory:"
_NO_FILE = "does not exist yet"


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite file of the configured database, or None (PostgreSQL, in memory)."""
    if not settings.is_sqlite:
        return None
    database = make_url(settings.resolved_database_url).database
    if not database or database == _IN_MEMORY:
        return None
    return Path(database)


def describe_database(settings: Settings) -> str:
    """Where the data is, for people: the SQLite file, or the URL without its password."""
    database = sqlite_file(settings)
    if database is not None:
        return str(database)
    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


async def _schema_problem(engine: AsyncEngine) -> str | None:
    state = await read_schema_state(engine)
    if state.is_current:
        return None
    if not state.current:
        return "has no tables yet"
    return (
        f"is at schema revision {', '.join(sorted(state.current))}, "
        f"this version needs {', '.join(sorted(state.heads))}"
    )


def _missing_file(settings: Settings) -> bool:
    database = sqlite_file(settings)
    return database is not None and not database.exists()


async def open_migrated_engine(settings: Settings) -> AsyncEngine:
    """An engine on the configured database, refused unless it is fully migrated."""
    if _missing_file(settings):
        raise migrate_hint(describe_database(settings), _NO_FILE)
    engine = create_engine_from_settings(settings)
    try:
        problem = await _schema_problem(engine)
    except BaseException:
        await engine.dispose()
        raise
    if problem is None:
        return engine
    await engine.dispose()
    raise migrate_hint(describe_database(settings), problem)


async def schema_problem(settings: Settings) -> str | None:
    """What keeps the configured database from being used (``has no tables yet``...),
    or None when it is fully migrated. Creates nothing."""
    if _missing_file(settings):
        return _NO_FILE
    engine = create_engine_from_settings(settings)
    try:
        return await _schema_problem(engine)
    finally:
        await engine.dispose()


async def require_migrated(settings: Settings) -> None:
    """Refuse to go on (``xynergy serve``) unless the database is fully migrated."""
    engine = await open_migrated_engine(settings)
    await engine.dispose()


def with_session(work: Callable[[AsyncSession, Settings], Awaitable[ResultT]]) -> ResultT:
    """Run ``work`` in one unit of work on the configured database (commit or roll back)."""
    settings = get_settings()

    async def run() -> ResultT:
        engine = await open_migrated_engine(settings)
        try:
            async with unit_of_work(async_sessionmaker(engine, expire_on_commit=False)) as session:
                return await work(session, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DBAPIError as exc:
        # Lock contention: the same message the API gives (503 database_busy).
        busy = database_busy(exc, retry_after_seconds=settings.database_busy_retry_after_seconds)
        if busy is None:
            raise
        raise busy from None


async def resolve_tenant(session: AsyncSession, reference: str) -> Tenant:
    """The tenant ``--tenant`` names.

    Precedence, so that no reference is ambiguous: a tenant id first (ids are
    generated, 32 hex digits); then ``operator``, the operator tenant (named
    ``platform``) whatever its id; then a tenant name. A tenant named
    ``operator`` is therefore reached by its id.
    """
    tenants = TenantRepository(session)
    by_id = await tenants.get(reference)
    if by_id is not None:
        return by_id
    if reference == OPERATOR_ALIAS:
        operator = await tenants.get_by_name(OPERATOR_TENANT_NAME)
        if operator is None:
            raise NotFound("There is no operator tenant yet: run `xynergy bootstrap`.")
        return operator
    by_name = await tenants.get_by_name(reference)
    if by_name is None:
        raise NotFound(f"No tenant has the id or name {reference!r}.")
    return by_name
