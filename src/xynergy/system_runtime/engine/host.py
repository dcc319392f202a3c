"""DBOS Transact, launched once per process and shared by every app that needs it.

DBOS is a process-wide singleton. The System Runtime app launches it in its
lifespan and destroys it when the last app using it stops, so several apps in
one process (tests, two replicas in one test) share one engine, and each new
engine starts from a clean slate. Two apps that disagree on the system database
cannot share a process: that is refused, not silently merged.

DBOS is launched from the running event loop on purpose: it then adopts that
loop, so queued runs execute on the app's loop with its database pools and
HTTP sessions instead of on a private loop of DBOS's own.

Shutdown is orderly: the last user stops DBOS taking runs from the queue, gives
the runs executing here ``shutdown_grace_seconds`` to finish, stops the rest
where they are (cancelled on the loop, nothing recorded: still PENDING to DBOS,
so the next launch with this executor id continues them at their first
unfinished step), and only then destroys DBOS. Destroying it with runs still on
the loop would shut the executor their checkpoints go through: each would fail
with a traceback and record itself failed instead of being recovered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dbos import DBOS, DBOSConfig, Queue

from xynergy.platform.config import Settings
from xynergy.platform.logging import get_logger
from xynergy.system_runtime.config import RuntimeSettings

__all__ = ["RUNS_QUEUE", "DbosHost", "system_database_url"]

log = get_logger(__name__)

RUNS_QUEUE = "xynergy-runs"
DEFAULT_EXECUTOR_ID = "local"
_APP_NAME = "xynergy"
_SQLITE_PREFIX = "sqlite+aiosqlite:///"
_POSTGRES_PREFIX = "postgresql+asyncpg://"
# DBOS names each queue's dequeuing thread so; they stop on DBOS's stop events.
_QUEUE_WORKER_PREFIX = "queue-worker-"
# DBOS's warning for every workflow and step task cancelled: at shutdown that is
# the expected end of a run that will be recovered, not something to warn about.
_CANCELLED_WARNING = "Asyncio task cancelled for workflow or step"
# Bounds for DBOS's own threads and for cancelled runs to unwind (no I/O: their
# finally blocks cancel their step tasks). DBOS joins its threads for 10 s too.
_STOP_SECONDS = 10.0


def system_database_url(settings: Settings) -> str:
    """DBOS's system database: a SQLite file beside the platform's, or the same
    PostgreSQL database (DBOS's tables in their own schema, ``dbos_schema``)."""
    url = settings.resolved_database_url
    if url.startswith(_SQLITE_PREFIX):
        path = url.removeprefix(_SQLITE_PREFIX)
        stem = path.removesuffix(".db")
        return f"sqlite:///{stem}.dbos.sqlite"
    if url.startswith(_POSTGRES_PREFIX):
        # DBOS speaks psycopg 3 (synchronous), the platform asyncpg.
        return "postgresql://" + url.removeprefix(_POSTGRES_PREFIX)
    raise ValueError(f"the System Runtime supports SQLite and PostgreSQL, not {url.split(':')[0]}")


def _dbos_config(settings: Settings, runtime: RuntimeSettings) -> DBOSConfig:
    return {
        "name": _APP_NAME,
        "system_database_url": system_database_url(settings),
        "application_version": runtime.application_version,
        "executor_id": runtime.executor_id,
        "dbos_system_schema": runtime.dbos_schema,
        "sys_db_pool_size": runtime.dbos_pool_size,
        "log_level": "WARNING",
        # Signals and approvals are noticed within this, without PostgreSQL NOTIFY.
        "notification_listener_polling_interval_sec": 0.1,
        # New, changed or paused schedules are noticed within this on each replica.
        "scheduler_polling_interval_sec": runtime.schedule_poll_seconds,
        # Migrated before the launch, off the event loop (migrate_system_database);
        # the launch only verifies.
        "run_migrations": False,
    }


def migrate_system_database(settings: Settings, runtime: RuntimeSettings) -> None:
    """Create or migrate DBOS's tables; safe to repeat. Blocking: call it in a thread.

    Never from the event loop: on PostgreSQL a DBOS migration may run CREATE INDEX
    CONCURRENTLY, which waits for every open transaction in the database, the app's
    own background ones included, and those need the loop to finish (a hang).
    """
    DBOS.migrate(system_database_url(settings), schema=runtime.dbos_schema)


async def migrate_system_database_off_loop(settings: Settings, runtime: RuntimeSettings) -> None:
    """:func:`migrate_system_database` in a thread of its own: DBOS makes its executor
    the loop's default one and shuts it down when destroyed, so after a relaunch in
    the same loop ``asyncio.to_thread`` has no executor left."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbos-migrate") as pool:
        await asyncio.get_running_loop().run_in_executor(
            pool, migrate_system_database, settings, runtime
        )


def _refuse_shared_executor_id(settings: Settings, runtime: RuntimeSettings) -> None:
    # On PostgreSQL replicas share the queue; two with the same id would each
    # recover the other's runs at restart and execute them twice at once.
    if (
        settings.environment == "production"
        and not settings.is_sqlite
        and runtime.executor_id == DEFAULT_EXECUTOR_ID
    ):
        raise RuntimeError(
            "production on PostgreSQL requires XYNERGY_RUNTIME_EXECUTOR_ID: one id per "
            "replica, stable across its restarts"
        )


def _route_dbos_logs_through_ours() -> None:
    # DBOS installs its own console handler; ours writes JSON lines with the request id.
    dbos_logger = logging.getLogger("dbos")
    for handler in list(dbos_logger.handlers):
        dbos_logger.removeHandler(handler)
    dbos_logger.propagate = True


@dataclass(slots=True)
class _Lease:
    config: DBOSConfig
    users: int
    queue: Queue
    engine: DBOS
    grace_seconds: float


class DbosHost:
    """The process's DBOS engine, counted by the apps using it."""

    _lease: _Lease | None = None
    # One lock per event loop (tests run one loop each; a lock is bound to its loop).
    _locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
        weakref.WeakKeyDictionary()
    )

    @classmethod
    def _lock(cls) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = cls._locks.get(loop)
        if lock is None:
            lock = cls._locks[loop] = asyncio.Lock()
        return lock

    @classmethod
    async def acquire(cls, settings: Settings, runtime: RuntimeSettings) -> Queue:
        """Launch DBOS (first user) or join it; the runs queue, registered."""
        _refuse_shared_executor_id(settings, runtime)
        config = _dbos_config(settings, runtime)
        async with cls._lock():
            lease = cls._lease
            if lease is not None:
                if _identity(lease.config) != _identity(config):
                    raise RuntimeError(
                        "one process hosts one DBOS engine: this app's system database "
                        "or version differs from the running one's"
                    )
                lease.users += 1
                return lease.queue
            await migrate_system_database_off_loop(settings, runtime)
            engine = DBOS(config=config)
            try:
                DBOS.launch()
                _route_dbos_logs_through_ours()
                queue = await DBOS.register_queue_async(
                    RUNS_QUEUE,
                    worker_concurrency=runtime.worker_concurrency,
                    partition_concurrency=runtime.tenant_concurrency,
                    polling_interval_sec=runtime.queue_poll_seconds,
                    on_conflict="always_update",
                )
            except BaseException:
                DBOS.destroy()
                raise
            cls._lease = _Lease(
                config=config,
                users=1,
                queue=queue,
                engine=engine,
                grace_seconds=runtime.shutdown_grace_seconds,
            )
            log.info(
                "runtime.engine_launched",
                application_version=config["application_version"],
                executor_id=config["executor_id"],
            )
            return queue

    @classmethod
    async def release(cls) -> None:
        """Leave the engine; the last user drains and destroys it (runs unfinished
        after the grace are recovered by the next launch on this executor id)."""
        async with cls._lock():
            lease = cls._lease
            if lease is None:
                return
            lease.users -= 1
            if lease.users > 0:
                return
            cls._lease = None
            with _quiet_cancellations():
                try:
                    await _drain(lease.engine, lease.grace_seconds)
                finally:
                    # Off the loop: destroying joins DBOS's threads, some of which may
                    # be waiting for this loop to finish a step.
                    await asyncio.to_thread(DBOS.destroy)
            log.info("runtime.engine_stopped")


async def _drain(engine: DBOS, grace_seconds: float) -> None:
    """Stop dequeuing, let this loop's runs finish within the grace, cancel the rest."""
    # DBOS's own attributes (3.x); DBOS.destroy(workflow_completion_timeout_sec=)
    # does the first two steps but leaves the unfinished runs on our loop.
    stop_events = getattr(engine, "background_thread_stop_events", None)
    workflow_tasks = getattr(engine, "_workflow_tasks", None)
    if stop_events is None or workflow_tasks is None:
        log.warning("runtime.drain_unavailable", reason="this DBOS version lacks its hooks")
        return
    for event in stop_events:
        event.set()
    # Once the queue workers stopped, no run can start here any more.
    await asyncio.to_thread(_join_queue_workers, _STOP_SECONDS)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_seconds
    running = _running_on(loop, workflow_tasks)
    if running:
        log.info("runtime.engine_draining", runs=len(running), grace_seconds=grace_seconds)
    while running and (remaining := deadline - loop.time()) > 0:
        await asyncio.wait(running, timeout=remaining)
        running = _running_on(loop, workflow_tasks)
    if not running:
        return
    for task in running:
        task.cancel()
    await asyncio.wait(running, timeout=_STOP_SECONDS)
    log.info("runtime.runs_interrupted", runs=len(running), recovered_by="the next launch")


def _running_on(loop: asyncio.AbstractEventLoop, tasks: Any) -> set[asyncio.Task[Any]]:
    return {task for task in list(tasks) if not task.done() and task.get_loop() is loop}


def _join_queue_workers(timeout: float) -> None:
    for thread in threading.enumerate():
        if thread.name.startswith(_QUEUE_WORKER_PREFIX):
            # A worker DBOS is still starting (enumerate lists those too) cannot be
            # joined yet; it sees the stop event as soon as it runs.
            with contextlib.suppress(RuntimeError):
                thread.join(timeout)


class _DropCancelledWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_CANCELLED_WARNING)


@contextmanager
def _quiet_cancellations() -> Iterator[None]:
    # Held until DBOS is destroyed: a cancelled run's step tasks unwind after it.
    dbos_logger = logging.getLogger("dbos")
    quiet = _DropCancelledWarnings()
    dbos_logger.addFilter(quiet)
    try:
        yield
    finally:
        dbos_logger.removeFilter(quiet)


def _identity(config: DBOSConfig) -> tuple[Any, ...]:
    return (
        config["system_database_url"],
        config["application_version"],
        config["executor_id"],
        config["dbos_system_schema"],
    )
