"""Group commit of the rows a run updates while it executes.

A run's rows are what tenants read; DBOS's checkpoints are what a run replays.
Waiting for a commit of the rows before and after every call made each step
three durable writes instead of DBOS's one (the benchmark in bench/README.md).
So a run queues its row updates here and goes on; one background task commits
whatever is queued in a single transaction, one ``executemany`` per kind of
update, a few milliseconds after the first one arrives. At rest a step's start
and end usually share a commit; under load, many steps do.

Nothing is lost when it matters: a run's final status is written through the
same queue and awaited, so it commits after (or with) every update its steps
queued, and a crash before a commit is repaired by the replay, which queues
the same updates again (they are written outside DBOS's step functions, from
what the workflow code sees). The queue is bounded by the runs executing
(the queue's worker concurrency) times their steps' few updates each.

Within one commit the kinds run in a fixed order that follows a step's life
(the run starts, an attempt starts, the step ends, the run ends), so the last update
of a row is its latest state whatever the batch holds.

The task keeps the connection it commits on while commits keep coming: a checkout
from the pool pings the server first (three round trips on PostgreSQL), which was
about a third of the task's time in the benchmark's profile. It gives the connection
back once idle for ``_KEEP_CONNECTION_SECONDS``, after any failed commit (a fresh,
pinged one serves the next), and when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, Update, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.busy import is_database_busy
from xynergy.platform.logging import get_logger
from xynergy.system_runtime.models import RunRecord, StepRecord

__all__ = ["RecordWriter"]

log = get_logger(__name__)

# Core statements on the tables: the ORM's update path is most of the CPU they cost.
_STEPS: Table = StepRecord.__table__  # type: ignore[assignment]
_RUNS: Table = RunRecord.__table__  # type: ignore[assignment]

# How long the task waits, once woken, for more updates to share the commit: about
# one in-process call, so a fast step's start and end are usually one commit. Rows
# trail the steps by this much; nothing waits for it but a run's final status.
_LINGER_SECONDS = 0.003
# One commit holds at most this many updates: bounded statements and transactions.
_BATCH_MAX = 500
# A busy database (SQLite's one writer, a PostgreSQL lock timeout) is retried.
_BUSY_ATTEMPTS = 4
_BUSY_BACKOFF_SECONDS = 0.25
# How long an idle writer keeps its connection: runs executing commit every few
# milliseconds; an idle process holds none of the pool's connections.
_KEEP_CONNECTION_SECONDS = 1.0


def _current_workflow() -> Any:
    # Only the run's current DBOS workflow writes its rows (see workflow.py).
    return _STEPS.c.run_id.in_(
        select(_RUNS.c.id).where(
            _RUNS.c.id == bindparam("w_run_id"), _RUNS.c.workflow_id == bindparam("w_workflow_id")
        )
    )


def _step_where(*, unless_succeeded: bool = False) -> Any:
    # A succeeded step never starts or fails again within its workflow: only a late
    # write (a replica that stalled past its takeover) could try, and must not win.
    return and_(
        _STEPS.c.run_id == bindparam("w_run_id"),
        _STEPS.c.step_id == bindparam("w_step_id"),
        _current_workflow(),
        *((_STEPS.c.status != "succeeded",) if unless_succeeded else ()),
    )


_ENDED = ("succeeded", "failed", "cancelled")
_RUN_STARTED: Update = (
    update(_RUNS)
    .where(
        _RUNS.c.id == bindparam("w_run_id"),
        _RUNS.c.workflow_id == bindparam("w_workflow_id"),
        # Not NOT IN: an expanding parameter cannot be part of an executemany.
        *(_RUNS.c.status != ended for ended in _ENDED),
    )
    .values(
        status="running",
        error_code=None,
        error=None,
        started_at=func.coalesce(
            _RUNS.c.started_at, bindparam("v_now", type_=_RUNS.c.started_at.type)
        ),
    )
)
_ATTEMPT: Update = (
    update(_STEPS)
    .where(_step_where(unless_succeeded=True))
    .values(
        attempts=_STEPS.c.attempts + 1,
        status="running",
        error_code=None,
        error=None,
        started_at=func.coalesce(
            _STEPS.c.started_at, bindparam("v_now", type_=_STEPS.c.started_at.type)
        ),
        dbos_step_id=bindparam("v_dbos_step_id"),
    )
)
_SUCCEEDED: Update = (
    update(_STEPS)
    .where(_step_where())
    .values(
        status="succeeded",
        output=bindparam("v_output"),
        finished_at=bindparam("v_now"),
        error_code=None,
        error=None,
    )
)
_FAILED: Update = (
    update(_STEPS)
    .where(_step_where(unless_succeeded=True))
    .values(
        status="failed",
        error_code=bindparam("v_error_code"),
        error=bindparam("v_error"),
        finished_at=bindparam("v_now"),
    )
)
_RUN_ENDED: Update = (
    update(_RUNS)
    .where(
        _RUNS.c.id == bindparam("w_run_id"),
        _RUNS.c.workflow_id == bindparam("w_workflow_id"),
        # Ends once: a replay ends it the same way, and a replica that stalled past
        # its takeover must not overwrite the end its runs got elsewhere.
        *(_RUNS.c.status != ended for ended in _ENDED),
    )
    .values(
        status=bindparam("v_status"),
        error_code=bindparam("v_error_code"),
        error=bindparam("v_error"),
        finished_at=bindparam("v_now"),
    )
)
# The order of kinds within one commit: the run's start, a step's life, the run's end.
_KINDS: tuple[Update, ...] = (_RUN_STARTED, _ATTEMPT, _SUCCEEDED, _FAILED, _RUN_ENDED)


@dataclass(slots=True)
class _Write:
    statement: Update
    params: dict[str, Any]
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


class RecordWriter:
    """The engine's queue of row updates and the task that commits it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._connection: AsyncConnection | None = None
        # Bounded by the executing runs' steps (see the module's docstring).
        self._pending: deque[_Write] = deque()  # guard: allow XG005 bounded by executing runs
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="runtime-record-writer")

    async def stop(self) -> None:
        """Commit what is queued, then stop the task."""
        await self.drained()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def drained(self) -> None:
        """Return once everything queued before this call is committed (or failed)."""
        if self._pending or not self._idle.is_set():
            last = self._pending[-1].done if self._pending else None
            if last is not None:
                await asyncio.wait([last])
            else:
                await self._idle.wait()

    def run_started(self, run_id: str, workflow_id: str) -> asyncio.Future[None]:
        """The run is running (unless it ended meanwhile)."""
        return self._submit(_RUN_STARTED, run_id, workflow_id)

    def attempt_started(
        self, run_id: str, workflow_id: str, step_id: str, dbos_step_id: int
    ) -> asyncio.Future[None]:
        return self._submit(
            _ATTEMPT,
            run_id,
            workflow_id,
            w_step_id=step_id,
            v_dbos_step_id=dbos_step_id,
        )

    def step_succeeded(
        self, run_id: str, workflow_id: str, step_id: str, output: Any
    ) -> asyncio.Future[None]:
        return self._submit(_SUCCEEDED, run_id, workflow_id, w_step_id=step_id, v_output=output)

    def step_failed(
        self, run_id: str, workflow_id: str, step_id: str, code: str, message: str
    ) -> asyncio.Future[None]:
        return self._submit(
            _FAILED, run_id, workflow_id, w_step_id=step_id, v_error_code=code, v_error=message
        )

    def run_ended(
        self,
        run_id: str,
        workflow_id: str,
        status: str,
        *,
        error_code: str | None = None,
        error: str | None = None,
    ) -> asyncio.Future[None]:
        """The run's final status (unless it was cancelled meanwhile), after its steps'."""
        return self._submit(
            _RUN_ENDED,
            run_id,
            workflow_id,
            v_status=status,
            v_error_code=error_code,
            v_error=error,
        )

    def _submit(
        self, statement: Update, run_id: str, workflow_id: str, **params: Any
    ) -> asyncio.Future[None]:
        self.start()
        write = _Write(
            statement,
            {"w_run_id": run_id, "w_workflow_id": workflow_id, "v_now": utcnow(), **params},
        )
        # Nobody awaits most of these: a failure is logged once per commit instead.
        write.done.add_done_callback(_retrieve)
        self._pending.append(write)
        self._idle.clear()
        self._wake.set()
        return write.done

    async def _run(self) -> None:
        try:
            while True:
                if not await self._woken():
                    await self._release()
                    continue
                await asyncio.sleep(_LINGER_SECONDS)
                self._wake.clear()
                while self._pending:
                    batch = [
                        self._pending.popleft() for _ in range(min(_BATCH_MAX, len(self._pending)))
                    ]
                    await self._commit(batch)
                if not self._pending:
                    self._idle.set()
        finally:
            await self._release()

    async def _woken(self) -> bool:
        """Wait for work; False when idle past _KEEP_CONNECTION_SECONDS with a connection."""
        if self._connection is None:
            await self._wake.wait()
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), _KEEP_CONNECTION_SECONDS)
        except TimeoutError:
            return False
        return True

    async def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # Shielded: a stop (a cancellation) must still return it to the pool.
            await asyncio.shield(
                asyncio.create_task(connection.close(), name="runtime-record-writer-release")
            )

    async def _commit(self, batch: list[_Write]) -> None:
        by_kind: dict[Update, list[dict[str, Any]]] = {}
        for write in batch:
            by_kind.setdefault(write.statement, []).append(write.params)
        try:
            await self._retrying_when_busy(by_kind)
        except Exception as exc:
            # The callers see it on their futures: a run's end awaits its own and
            # fails the run as an engine error; nothing is dropped silently.
            log.error("runtime.records_write_failed", updates=len(batch), error=type(exc).__name__)
            for write in batch:
                if not write.done.done():
                    write.done.set_exception(exc)
            return
        for write in batch:
            if not write.done.done():
                write.done.set_result(None)

    async def _retrying_when_busy(self, by_kind: dict[Update, list[dict[str, Any]]]) -> None:
        for attempt in range(1, _BUSY_ATTEMPTS + 1):
            try:
                await self._write(by_kind)
                return
            except Exception as exc:
                if attempt == _BUSY_ATTEMPTS or not is_database_busy(exc):
                    raise
                log.info("runtime.records_busy_retry", attempt=attempt)
                await asyncio.sleep(_BUSY_BACKOFF_SECONDS * attempt)

    async def _write(self, by_kind: dict[Update, list[dict[str, Any]]]) -> None:
        """One transaction on the kept connection (taken from the pool if none)."""
        if self._connection is None:
            self._connection = await self._engine.connect()
        connection = self._connection
        try:
            async with connection.begin():
                for kind in _KINDS:
                    rows = by_kind.get(kind)
                    if rows:
                        await connection.execute(kind, rows)
        except BaseException:
            # Rolled back; the connection may be what failed (a server restart): the
            # next commit checks out a fresh one, which the pool pings first.
            await self._release()
            raise
