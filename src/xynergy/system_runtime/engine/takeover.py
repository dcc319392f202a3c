"""Taking over the runs of a replica that died for good (PostgreSQL).

DBOS binds a dequeued run to the executor id of the replica executing it and
recovers it only when a replica with that id launches again; a replica whose
slot is gone never does. DBOS has no liveness signal of its own (only its
Conductor service has, which the platform does not use), so each replica keeps
one: every ``takeover_heartbeat_seconds`` it writes its row of
``runtime_executors`` (with the database's clock), then looks for rows silent
for ``takeover_grace_seconds``.

A silent executor is taken over in one transaction: its row is locked ``FOR
UPDATE SKIP LOCKED`` (exactly one live replica takes it; the others skip it),
DBOS re-queues that executor's pending runs of this version
(``DBOS._recover_pending_workflows``: PENDING back to ENQUEUED on their queue and
tenant partition, where any live replica dequeues them and continues each at its
first unrecorded step), and the row is deleted. A replica dying midway rolls the
transaction back and another takes over on a later tick; a repeat is harmless,
as DBOS re-queues only what is still PENDING under the dead id.

A replica counted dead that was only paused, or that restarts with its id: its
heartbeat waits for the lock and writes its row again; DBOS fences the old
executions (a checkpoint lands only while the execution's ownership token is the
row's, which the re-queue cleared), its launch recovers only what is still
PENDING under its id (nothing taken over), and a step that was in flight is
called again with the same ``Idempotency-Key``.

After a database outage every heartbeat is old: a replica sweeps only once its
own heartbeats have succeeded for a whole grace period, which gives the others
as long to write theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

from dbos import DBOS
from prometheus_client import Counter
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.models import RuntimeExecutor

__all__ = ["TASK_NAME", "ExecutorTakeover"]

TASK_NAME = "runtime-executor-takeover"
# Dead executors taken over per tick: a fleet dying at once is taken over in a few ticks.
_TAKEOVERS_PER_TICK = 16

log = get_logger(__name__)


class ExecutorTakeover:
    """This replica's heartbeat and its sweep for dead replicas (off on SQLite)."""

    def __init__(self, settings: Settings, runtime: RuntimeSettings) -> None:
        self.enabled = runtime.takeover_enabled and not settings.is_sqlite
        self._executor_id = runtime.executor_id
        self._version = runtime.application_version
        self._interval = runtime.takeover_heartbeat_seconds
        self._grace = runtime.takeover_grace_seconds
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._executors_taken: Counter | None = None
        self._runs_taken: Counter | None = None
        self._task: asyncio.Task[None] | None = None
        self._healthy_since: float | None = None
        self._last_beat: float | None = None

    async def start(self, platform: Platform) -> None:
        """Write this replica's first heartbeat, then heartbeat and sweep in a named
        background task (once)."""
        if not self.enabled or self._task is not None:
            return
        self._sessions = platform.sessionmaker
        self._executors_taken = platform.metrics.service_metric(
            Counter,
            "xynergy_runtime_executor_takeovers",
            "Replicas (executor ids) silent for the grace period whose runs this replica "
            "took over.",
        )
        self._runs_taken = platform.metrics.service_metric(
            Counter,
            "xynergy_runtime_runs_taken_over",
            "Runs of dead replicas this replica re-queued (any replica may execute them).",
        )
        try:
            await self._beat()
        except Exception as exc:
            # The task's ticks try again; serving runs does not wait for the heartbeat.
            log.warning("runtime.takeover_heartbeat_failed", error=type(exc).__name__)
        self._task = asyncio.create_task(self._run_forever(), name=TASK_NAME)

    async def stop(self) -> None:
        """Cancel the task (a takeover in flight rolls back; another replica redoes it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def tick(self) -> list[str]:
        """One heartbeat, then, once healthy for a grace period, the sweep: the
        executor ids taken over."""
        await self._beat()
        if self._healthy_since is None or time.monotonic() - self._healthy_since < self._grace:
            return []
        taken: list[str] = []
        for _ in range(_TAKEOVERS_PER_TICK):
            executor_id = await self._take_over_one()
            if executor_id is None:
                break
            taken.append(executor_id)
        return taken

    async def _beat(self) -> None:
        assert self._sessions is not None  # noqa: S101 - set by start()
        statement = insert(RuntimeExecutor).values(
            executor_id=self._executor_id,
            application_version=self._version,
            heartbeat_at=func.now(),
        )
        statement = statement.on_conflict_do_update(
            index_elements=[RuntimeExecutor.executor_id],
            set_={"application_version": self._version, "heartbeat_at": func.now()},
        )
        async with unit_of_work(self._sessions) as session:
            await session.execute(statement)
        now = time.monotonic()
        if self._last_beat is None or now - self._last_beat > self._grace:
            # First beat, or silent as long as a dead replica: others may have
            # been unable to write theirs too.
            self._healthy_since = now
        self._last_beat = now

    async def _take_over_one(self) -> str | None:
        assert self._sessions is not None  # noqa: S101 - set by start()
        async with unit_of_work(self._sessions) as session:
            executor_id = (
                await session.execute(
                    select(RuntimeExecutor.executor_id)
                    .where(
                        RuntimeExecutor.heartbeat_at < func.now() - timedelta(seconds=self._grace),
                        # DBOS recovers only runs of this version: another version's
                        # replicas take over their own kind.
                        RuntimeExecutor.application_version == self._version,
                        RuntimeExecutor.executor_id != self._executor_id,
                    )
                    .order_by(RuntimeExecutor.heartbeat_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if executor_id is None:
                return None
            # DBOS's way to recover another executor's runs (its Conductor calls it).
            # Its system database is its own (synchronous) pool; the row stays
            # locked meanwhile, so the dead replica's id cannot come back halfway.
            handles = await asyncio.to_thread(DBOS._recover_pending_workflows, [executor_id])
            await session.execute(
                delete(RuntimeExecutor).where(RuntimeExecutor.executor_id == executor_id)
            )
        if self._executors_taken is not None and self._runs_taken is not None:
            self._executors_taken.inc()
            self._runs_taken.inc(len(handles))
        log.warning(
            "runtime.executor_taken_over",
            dead_executor_id=executor_id,
            executor_id=self._executor_id,
            runs=len(handles),
        )
        return executor_id

    async def _run_forever(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.tick()
            except Exception as exc:
                # The next tick tries again; a takeover in flight rolled back whole.
                log.warning("runtime.takeover_tick_failed", error=type(exc).__name__)
