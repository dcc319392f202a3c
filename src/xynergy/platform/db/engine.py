"""Engine creation: SQLite tuned for concurrent use, PostgreSQL pooled."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from xynergy.platform.config import Settings
from xynergy.platform.db.busy import database_unavailable

__all__ = ["create_engine_from_settings"]


def _tune_sqlite(engine: AsyncEngine) -> None:
    # WAL lets readers proceed during a write; foreign keys are off in SQLite
    # unless asked for; NORMAL sync is durable in WAL mode across app crashes.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    # pysqlite opens a transaction before INSERT/UPDATE/DELETE but not before a
    # SAVEPOINT, which then opens one itself; releasing that outermost savepoint is
    # a COMMIT in SQLite. A savepoint-guarded write (create unless it exists) was
    # durable before the request's unit of work committed: answered 503 when that
    # commit failed, yet stored, and its retry refused as a duplicate. BEGIN first,
    # so the savepoint nests inside the request's transaction.
    @event.listens_for(engine.sync_engine, "savepoint")
    def _on_savepoint(connection: Connection, _name: str | None) -> None:
        if not connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN")


def _roll_back_after_failed_commit(engine: AsyncEngine) -> None:
    # A COMMIT that fails can leave the driver's transaction open (SQLite keeps it
    # after SQLITE_BUSY or a deferred foreign-key failure), while SQLAlchemy counts
    # it as ended and returns the connection to the pool without a rollback. The
    # next unit of work on that connection would then commit the failed request's
    # writes with its own: a 503 whose data lands later, or twice once retried.
    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        connection = context.connection
        if context.statement is not None or connection is None or context.is_disconnect:
            return  # a statement's error: the unit of work rolls back as usual
        if connection.invalidated:
            return
        try:
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
        except Exception:
            # Cannot even roll back: discard the connection, and its transaction.
            context.is_disconnect = True
            context.invalidate_pool_on_disconnect = False


def _report_unreachable_server(engine: AsyncEngine, retry_after_seconds: int) -> None:
    # asyncpg raises a refused or timed-out connect (and "too many connections")
    # as its own exception, which SQLAlchemy passes through unwrapped: no
    # DBAPIError handler would see it. Named here, at the one place every
    # connection (a first checkout, a reconnect after a failed pre-ping) is made.
    @event.listens_for(engine.sync_engine, "do_connect")
    def _on_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            unavailable = database_unavailable(exc, retry_after_seconds=retry_after_seconds)
            if unavailable is None:
                raise
            raise unavailable from exc


def create_engine_from_settings(settings: Settings) -> AsyncEngine:
    """Create the process's async engine; the caller disposes it on shutdown."""
    url = settings.resolved_database_url
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
            pool_timeout=settings.database_pool_timeout_seconds,
            # sqlite3's timeout is its busy timeout: a writer waits this long for
            # the lock, then gets "database is locked" (answered 503 database_busy).
            # pysqlite's own transaction control is kept on purpose: it opens a
            # transaction (deferred BEGIN) just before the first INSERT/UPDATE/DELETE
            # and runs earlier SELECTs outside one. So a transaction's first
            # statement takes the write lock, and the busy timeout applies; a
            # transaction that had read first could only upgrade, which SQLite
            # refuses at once (SQLITE_BUSY, no wait) while another writer holds the
            # lock. BEGIN IMMEDIATE on every transaction would avoid that upgrade,
            # but would make every read-only request queue behind the writers.
            connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000},
        )
        _tune_sqlite(engine)
        _roll_back_after_failed_commit(engine)
        return engine
    engine = create_async_engine(
        url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
        pool_pre_ping=True,
        # A statement waiting for a lock longer than this fails (55P03), which is
        # answered 503 database_busy, rather than holding its request open.
        connect_args={"server_settings": {"lock_timeout": str(settings.postgres_lock_timeout_ms)}},
    )
    _report_unreachable_server(engine, settings.database_unavailable_retry_after_seconds)
    _roll_back_after_failed_commit(engine)
    return engine
