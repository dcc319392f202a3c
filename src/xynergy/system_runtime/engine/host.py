"""DBOS Transact, launched once per process and shared by every app that needs it.

DBOS is a process-wide singleton. The System Runtime app launches it in its
lifespan and destroys it when the last app using it stops, so several apps in
one process (tests, two replicas in one test) share one engine, and each new
engine starts from a clean slate. Two apps that disagree on the system database
cannot share a process: that is refused, not silently merged.

DBOS is launched from the running event loop on purpose: it then adopts that
loop, so queued runs execute on the app's loop with its database pools and
HTTP sessions instead of on a private loop of DBOS's own.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
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
    }


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
            DBOS(config=config)
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
            cls._lease = _Lease(config=config, users=1, queue=queue)
            log.info(
                "runtime.engine_launched",
                application_version=config["application_version"],
                executor_id=config["executor_id"],
            )
            return queue

    @classmethod
    async def release(cls) -> None:
        """Leave the engine; the last user destroys it (runs in flight are recovered
        by the next launch on this executor id)."""
        async with cls._lock():
            lease = cls._lease
            if lease is None:
                return
            lease.users -= 1
            if lease.users > 0:
                return
            cls._lease = None
            # Off the loop: destroying joins DBOS's threads, some of which may be
            # waiting for this loop to finish a step.
            await asyncio.to_thread(DBOS.destroy)
            log.info("runtime.engine_stopped")


def _identity(config: DBOSConfig) -> tuple[Any, ...]:
    return (
        config["system_database_url"],
        config["application_version"],
        config["executor_id"],
        config["dbos_system_schema"],
    )
