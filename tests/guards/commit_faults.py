"""A transient database failure at commit time, for the transient-write guard.

``CommitFaults`` wraps the platform engine's ``do_commit``: while a request is armed
(a context variable, so only the armed request and the tasks it starts are hit),
the n-th commit of a transaction that wrote fails the way a real outage makes it
fail. SQLite: ``database is locked`` (another writer held the file). PostgreSQL:
the connection is cut under the commit (asyncpg's socket terminated), so the
server rolls the transaction back and the driver raises what it raises on a lost
connection. The write statements of each transaction are noted, so a test can
tell "answered 2xx after writing the same tables again" from "answered 2xx and
lost the write".
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, func, literal, select, union_all
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.platform.hostile import HostilePlatform
from xynergy.migrations.models import Base
from xynergy.platform.rollups.models import ROLLUP_TABLES

__all__ = ["IDEMPOTENCY_TABLE", "UNSTABLE_TABLES", "CommitFaults", "FaultPlan", "row_counts"]


_WRITE_STATEMENT = re.compile(
    r"^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)\"?", re.IGNORECASE
)
_WRITES_KEY = "xynergy_guard_writes"


@dataclass
class FaultPlan:
    """Which write commit of one armed request fails, and what the commits wrote."""

    fail_at: int
    write_commits: int = 0
    fired: bool = False
    failed_tables: set[str] = field(default_factory=set)
    # Tables written by commits that succeeded after the injected failure.
    rewritten_tables: set[str] = field(default_factory=set)
    # Tables written by commits that succeeded before it (or in a request never failed).
    committed_tables: set[str] = field(default_factory=set)


_armed: ContextVar[FaultPlan | None] = ContextVar("xynergy_guard_commit_fault", default=None)


class CommitFaults:
    """Fails chosen commits of ``engine`` for armed requests (see the module docstring)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.sync_engine
        self._dialect = self._engine.dialect
        self._real_commit = self._dialect.do_commit
        self._backend = self._engine.url.get_backend_name()

    def install(self) -> None:
        event.listen(self._engine, "before_cursor_execute", self._note_statement)
        event.listen(self._engine, "rollback", self._forget_writes)
        self._dialect.do_commit = self._do_commit  # type: ignore[method-assign]

    def remove(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._note_statement)
        event.remove(self._engine, "rollback", self._forget_writes)
        self._dialect.do_commit = self._real_commit  # type: ignore[method-assign]

    @contextmanager
    def armed(self, fail_at: int) -> Iterator[FaultPlan]:
        """Fail the ``fail_at``-th write commit made in this context (and tasks it starts)."""
        plan = FaultPlan(fail_at)
        token = _armed.set(plan)
        try:
            yield plan
        finally:
            _armed.reset(token)
            plan.fail_at = 0  # tasks that outlive the request commit normally

    def _note_statement(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        match = _WRITE_STATEMENT.match(statement)
        if match:
            conn.connection.info.setdefault(_WRITES_KEY, set()).add(match.group(1).lower())

    def _forget_writes(self, conn: Connection) -> None:
        if not conn.invalidated:
            conn.connection.info.pop(_WRITES_KEY, None)

    def _do_commit(self, dbapi_connection: Any) -> None:
        written: set[str] = dbapi_connection.info.pop(_WRITES_KEY, set())
        plan = _armed.get()
        if plan is None or not written or plan.fail_at == 0:
            self._real_commit(dbapi_connection)
            return
        plan.write_commits += 1
        if plan.write_commits == plan.fail_at:
            plan.fired = True
            plan.failed_tables |= written
            self._fail(dbapi_connection)
        self._real_commit(dbapi_connection)
        if plan.fired:
            plan.rewritten_tables |= written
        else:
            plan.committed_tables |= written

    def _fail(self, dbapi_connection: Any) -> None:
        if self._backend == "postgresql":
            # The connection is lost under the commit: the real commit then fails
            # as it does in an outage, and the server rolls the transaction back.
            dbapi_connection.driver_connection.terminate()
            self._real_commit(dbapi_connection)
            raise AssertionError("a commit on a terminated connection succeeded")
        # Another writer held the file past the busy timeout. The transaction stays
        # open; the unit of work rolls it back, as after a real SQLITE_BUSY.
        locked = sqlite3.OperationalError("database is locked")
        locked.sqlite_errorcode = 5  # type: ignore[attr-defined]
        raise locked


# Written again in the background when storing a request's outcome fails (see
# idempotency_store); that it landed is checked by replaying the request.
IDEMPOTENCY_TABLE = "platform_idempotency_records"
# Tables whose rows move on their own (written off the request path, on timers):
# row counts of the rest must not depend on whether a commit failed.
UNSTABLE_TABLES = frozenset(
    {
        *(table.name for table in ROLLUP_TABLES),
        "ai_usage_events",
        "ai_usage_daily",
        "ai_budget_counters",
        "runtime_runs",
        "runtime_run_steps",
        "runtime_executors",
        "alert_events",
        # The default platform rules, made by the dashboard's evaluator on its timer.
        "alert_rules",
        "platform_outbox",
        "platform_idempotency_records",
    }
)


async def row_counts(api: HostilePlatform) -> dict[str, int]:
    """Rows per table (but the unstable ones), counted in SQL in one statement."""
    tables = [t for t in Base.metadata.sorted_tables if t.name not in UNSTABLE_TABLES]
    counts = union_all(
        *(
            select(literal(t.name).label("name"), func.count().label("rows")).select_from(t)
            for t in tables
        )
    )
    async with api.platform.sessionmaker() as session:
        return {str(name): int(rows) for name, rows in (await session.execute(counts)).all()}
