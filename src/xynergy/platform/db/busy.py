"""Telling lock contention apart from other database errors.

A write that waited its bound for other writers (SQLite's busy timeout,
PostgreSQL's ``lock_timeout``), lost to a concurrent transaction, or waited the
pool timeout for a connection, is not a bug: the same request succeeds when retried. It becomes :class:`DatabaseBusy`
(503 with ``Retry-After``), never a 500.

Neither is a database that cannot be reached: a refused or timed-out connect, a
connection lost mid-request (the server restarted, a backend was terminated), a
failed pre-ping that cannot reconnect, or ``too many connections``. That becomes
:class:`DatabaseUnavailable` (503 ``database_unavailable`` with ``Retry-After``).
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from xynergy.platform.exceptions import DatabaseBusy, DatabaseUnavailable

__all__ = ["database_busy", "database_unavailable", "is_database_busy", "is_database_unavailable"]

# Primary result codes; extended ones (SQLITE_BUSY_SNAPSHOT...) keep them in the low byte.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_PRIMARY_CODE_MASK = 0xFF
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")
# lock_not_available (lock_timeout or NOWAIT), deadlock_detected, serialization_failure:
# PostgreSQL's "retry the transaction" class.
_POSTGRES_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
# PostgreSQL's connection_exception class (08xxx: no connection, connection lost...),
# too_many_connections, and the server shutting down or not yet accepting connections.
_POSTGRES_CONNECTION_CLASS = "08"
_POSTGRES_UNAVAILABLE_SQLSTATES = frozenset({"53300", "57P01", "57P02", "57P03"})
# exc.orig, its cause...: a driver error is wrapped at most a few times.
_MAX_CHAIN = 4


def _is_busy_driver_error(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        code = getattr(error, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & _SQLITE_PRIMARY_CODE_MASK in (_SQLITE_BUSY, _SQLITE_LOCKED)
        return str(error).startswith(_SQLITE_BUSY_MESSAGES)
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate in _POSTGRES_BUSY_SQLSTATES


def is_database_busy(exc: BaseException) -> bool:
    """Whether ``exc`` (a SQLAlchemy or driver error) means "other writers held the lock"."""
    if isinstance(exc, PoolTimeout):
        # Every pooled connection stayed in use for the whole pool timeout: the
        # same overload, one step earlier.
        return True
    error: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if error is None:
            return False
        if _is_busy_driver_error(error):
            return True
        error = error.orig if isinstance(error, DBAPIError) else error.__cause__
    return False


def database_busy(exc: BaseException, *, retry_after_seconds: int) -> DatabaseBusy | None:
    """The :class:`DatabaseBusy` error ``exc`` stands for, or None if it is another error."""
    if not is_database_busy(exc):
        return None
    return DatabaseBusy(headers={"Retry-After": str(retry_after_seconds)})


def _is_unavailable_driver_error(error: BaseException) -> bool:
    if isinstance(error, DatabaseUnavailable):
        return True
    if isinstance(error, sqlite3.Error):
        # SQLite has no server: its errors are about the file, not a connection.
        return False
    # Refused, reset, unreachable (OSError) or a connect that timed out, as the
    # driver raised them before any PostgreSQL error code existed.
    if isinstance(error, (OSError, TimeoutError)):
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return isinstance(sqlstate, str) and (
        sqlstate.startswith(_POSTGRES_CONNECTION_CLASS)
        or sqlstate in _POSTGRES_UNAVAILABLE_SQLSTATES
    )


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means "the database could not be reached or dropped the connection"."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # SQLAlchemy's own disconnect detection (a dead pooled connection).
        return True
    error: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if error is None:
            return False
        if _is_unavailable_driver_error(error):
            return True
        error = error.orig if isinstance(error, DBAPIError) else error.__cause__
    return False


def database_unavailable(
    exc: BaseException, *, retry_after_seconds: int
) -> DatabaseUnavailable | None:
    """The :class:`DatabaseUnavailable` error ``exc`` stands for, or None if it is another."""
    if isinstance(exc, DatabaseUnavailable):
        return exc
    if not is_database_unavailable(exc):
        return None
    return DatabaseUnavailable(headers={"Retry-After": str(retry_after_seconds)})
