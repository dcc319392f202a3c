"""Another connection holding the lock a write needs, on SQLite or PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import asyncpg

# Constant statements: the tables are named here, never taken from input.
_PG_LOCKS = {
    "tenants": "LOCK TABLE tenants IN EXCLUSIVE MODE",
    "aso_keywords": "LOCK TABLE aso_keywords IN EXCLUSIVE MODE",
}


@asynccontextmanager
async def write_lock_held(
    database_url: str, table: Literal["tenants", "aso_keywords"]
) -> AsyncIterator[None]:
    """Until the block ends, writes to ``table`` must wait.

    SQLite: the database's one write lock (``BEGIN IMMEDIATE``). PostgreSQL: an
    EXCLUSIVE lock on ``table``, which lets reads through and holds back writes.
    Released by rolling back, so the holder writes nothing.
    """
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    pg = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        transaction = pg.transaction()
        await transaction.start()
        await pg.execute(_PG_LOCKS[table])
        yield
        await transaction.rollback()
    finally:
        await pg.close()
