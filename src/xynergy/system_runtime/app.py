"""The System Runtime service app: durable workflow runs on DBOS Transact."""

from __future__ import annotations

from fastapi import FastAPI

from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS, Catalogue
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.endpoints import router as definitions_router
from xynergy.system_runtime.engine import context as runtime_context
from xynergy.system_runtime.engine.events import RunEvents
from xynergy.system_runtime.engine.host import DbosHost
from xynergy.system_runtime.engine.reconcile import queue_orphaned_runs
from xynergy.system_runtime.engine.record_writer import RecordWriter
from xynergy.system_runtime.engine.takeover import ExecutorTakeover
from xynergy.system_runtime.extra_operations import with_extra_operations
from xynergy.system_runtime.live.endpoints import router as live_router
from xynergy.system_runtime.live.service import LiveProgress
from xynergy.system_runtime.runs.endpoints import router as runs_router
from xynergy.system_runtime.schedules.endpoints import router as schedules_router
from xynergy.system_runtime.schedules.firing import apply_process_schedules
from xynergy.system_runtime.triggers.endpoints import router as triggers_router

__all__ = ["SLUG", "create_system_runtime_app"]

SLUG = "system-runtime"


def create_system_runtime_app(
    settings: Settings,
    platform: Platform | None = None,
    runtime: RuntimeSettings | None = None,
    catalogue: Catalogue | None = None,
) -> FastAPI:
    """The System Runtime; its settings come from ``XYNERGY_RUNTIME_*`` unless given,
    its operations from the built-in catalogue unless given (a deployment's own)."""
    runtime = runtime or RuntimeSettings()
    catalogue = with_extra_operations(
        catalogue or BUILT_IN_OPERATIONS, runtime.extra_operations, settings
    )
    bound: list[runtime_context.RuntimeContext] = []
    events = RunEvents(queue_size=runtime.live_event_queue_size)
    live = LiveProgress(runtime, events)  # progress streams, tickets, metrics
    takeover = ExecutorTakeover(settings, runtime)  # of dead replicas' runs

    async def start_engine(shared: Platform) -> None:
        context = runtime_context.RuntimeContext(
            platform=shared,
            catalogue=catalogue,
            settings=runtime,
            events=events,
            records=RecordWriter(shared.engine),
        )
        app.state.runtime = context

        async def launch() -> None:
            # Bound before launching: DBOS recovers interrupted runs as it launches.
            runtime_context.bind(context)
            bound.append(context)
            await DbosHost.acquire(settings, runtime)
            # Not before: DBOS's launch blocks this loop, and a first launch may build
            # an index CONCURRENTLY, which waits for any transaction this loop has open.
            await takeover.start(shared)
            await queue_orphaned_runs(context)
            await apply_process_schedules(runtime)

        # After every service is reachable: a recovered run calls them at once.
        shared.when_ready(launch)

    async def stop_engine(shared: Platform) -> None:
        if not bound:
            return
        context = bound[-1]
        try:
            await DbosHost.release()
        finally:
            # Heartbeats go on while DBOS drains: a live replica's runs stay its own.
            await takeover.stop()
            runtime_context.unbind(bound.pop())
            # After the runs stopped: what they queued is committed, not lost.
            await context.records.stop()

    app = create_service_app(
        slug=SLUG,
        title="Xynergy System Runtime",
        settings=settings,
        routers=[runs_router, definitions_router, schedules_router, triggers_router, live_router],
        platform=platform,
        on_startup=[start_engine, live.start],
        on_shutdown=[stop_engine, live.stop],
    )
    app.state.runtime_settings = runtime
    app.state.live = live
    return app
