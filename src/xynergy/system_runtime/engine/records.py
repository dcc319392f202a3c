"""The run's and its steps' rows, as the engine updates them while a run executes.

Every function is one short transaction. The rows are what tenants read; they
are written with the values DBOS makes deterministic (a replayed run writes the
same values again), so a replay only repeats harmless updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Select, Update, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.busy import is_database_busy
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.system_runtime.models import RunRecord, StepRecord

__all__ = [
    "load_run",
    "is_current",
    "set_run_status",
    "set_step",
    "start_attempt",
]

Sessions = async_sessionmaker[AsyncSession]
T = TypeVar("T")

log = get_logger(__name__)

# A busy database (another writer held it past its busy timeout) is retried a few
# times, a little later each time, before the run's bookkeeping gives up.
_BUSY_ATTEMPTS = 4
_BUSY_BACKOFF_SECONDS = 0.25


async def set_run_status(
    sessions: Sessions,
    run_id: str,
    status: str,
    *,
    started: bool = False,
    finished: bool = False,
    error_code: str | None = None,
    error: str | None = None,
    only_if_not: tuple[str, ...] = (),
    workflow_id: str | None = None,
) -> bool:
    """Set the run's status; with ``workflow_id``, only while that DBOS workflow is
    still the run's (a resume forks a new one: the old one must not write). Whether
    the row was updated."""
    values: dict[str, Any] = {"status": status, "error_code": error_code, "error": error}
    now = utcnow()
    if started:
        values["started_at"] = now
    if finished:
        values["finished_at"] = now
    statement = update(RunRecord).where(RunRecord.id == run_id).values(**values)
    if only_if_not:
        statement = statement.where(RunRecord.status.not_in(only_if_not))
    if workflow_id is not None:
        statement = statement.where(RunRecord.workflow_id == workflow_id)
    return await _execute(sessions, statement) > 0


async def is_current(sessions: Sessions, run_id: str, workflow_id: str) -> bool:
    """Whether ``workflow_id`` is still the run's DBOS workflow (see set_run_status)."""
    async with unit_of_work(sessions) as session:
        found = await session.scalar(_current_run(run_id, workflow_id))
    return found is not None


async def set_step(
    sessions: Sessions,
    run_id: str,
    step_id: str,
    values: Mapping[str, Any],
    *,
    workflow_id: str | None = None,
) -> None:
    """Update one step's row; with ``workflow_id``, only while that DBOS workflow is
    still the run's (see :func:`set_run_status`)."""
    statement = (
        update(StepRecord)
        .where(StepRecord.run_id == run_id, StepRecord.step_id == step_id)
        .values(**values)
    )
    if workflow_id is not None:
        statement = statement.where(StepRecord.run_id.in_(_current_run(run_id, workflow_id)))
    await _execute(sessions, statement)


async def start_attempt(
    sessions: Sessions,
    run_id: str,
    step_id: str,
    *,
    workflow_id: str | None = None,
    dbos_step_id: int | None = None,
) -> int | None:
    """Count one more attempt of a step and mark it running, in one statement; the
    attempt's number, or None when ``workflow_id`` is no longer the run's (see
    :func:`set_run_status`)."""
    values: dict[str, Any] = {
        "attempts": StepRecord.attempts + 1,
        "status": "running",
        "error_code": None,
        "error": None,
        "started_at": func.coalesce(StepRecord.started_at, utcnow()),
    }
    if dbos_step_id is not None:
        values["dbos_step_id"] = dbos_step_id
    statement = (
        update(StepRecord)
        .where(StepRecord.run_id == run_id, StepRecord.step_id == step_id)
        .values(**values)
        .returning(StepRecord.attempts)
    )
    if workflow_id is not None:
        statement = statement.where(StepRecord.run_id.in_(_current_run(run_id, workflow_id)))

    async def write() -> int | None:
        async with unit_of_work(sessions) as session:
            attempts: int | None = await session.scalar(statement)
            return attempts

    return await _retrying_when_busy(write)


async def load_run(
    sessions: Sessions, run_id: str, *, with_steps: bool
) -> tuple[RunRecord, dict[str, StepRecord]] | None:
    """The run and (``with_steps``) its steps' rows, read in one transaction; None
    when the run no longer exists."""

    async def read() -> tuple[RunRecord, dict[str, StepRecord]] | None:
        async with unit_of_work(sessions) as session:
            run = await session.get(RunRecord, run_id)
            if run is None or not with_steps:
                return (run, {}) if run is not None else None
            # Bounded: a run has at most steps_max steps (checked when it started).
            rows = await session.scalars(
                select(StepRecord).where(StepRecord.run_id == run_id).limit(10_000)
            )
            return run, {row.step_id: row for row in rows}

    return await _retrying_when_busy(read)


async def _execute(sessions: Sessions, statement: Update) -> int:
    """Run ``statement`` in its own transaction; the number of rows it matched."""

    async def write() -> int:
        async with unit_of_work(sessions) as session:
            result = await session.execute(statement)
            return int(getattr(result, "rowcount", 0) or 0)

    return await _retrying_when_busy(write)


def _current_run(run_id: str, workflow_id: str) -> Select[Any]:
    return select(RunRecord.id).where(RunRecord.id == run_id, RunRecord.workflow_id == workflow_id)


async def _retrying_when_busy(write: Callable[[], Awaitable[T]]) -> T:
    """``write`` again when the database was busy (SQLite's single writer, a PostgreSQL
    lock timeout): the engine's bookkeeping must not end a run that is fine."""
    for attempt in range(1, _BUSY_ATTEMPTS + 1):
        try:
            return await write()
        except Exception as exc:
            if attempt == _BUSY_ATTEMPTS or not is_database_busy(exc):
                raise
            log.info("runtime.records_busy_retry", attempt=attempt)
            await asyncio.sleep(_BUSY_BACKOFF_SECONDS * attempt)
    raise AssertionError("unreachable")
