"""The dialect's own INSERT, for ON CONFLICT upserts on both supported databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["DialectInsert", "dialect_insert"]

DialectInsert = postgresql.Insert | sqlite.Insert


def dialect_insert(session: AsyncSession, table: Table | Any) -> DialectInsert:
    """``INSERT`` into ``table`` (a Table or mapped class) with ``on_conflict_*`` support.

    Generic ``insert()`` has no ON CONFLICT; PostgreSQL's and SQLite's have the same
    methods, so callers build one statement for both.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are not implemented for {dialect}")
