"""Shared by ``runtime_overhead.py`` and ``runtime_memory.py``: a tiny service the
workflow steps call, databases to run on, and the System Runtime wired to both.

The service (``bench-svc``) answers ``GET /api/bench/step?tag=..&index=..`` with a
small JSON body after the platform's usual authentication (an internal token
minted by the caller, scope ``content:read``). It notes when each call arrives,
which is where both benchmarks take their clock readings: the same point for a
System Runtime step and for a bare DBOS step.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import structlog
from dbos import DBOS
from fastapi import Depends, FastAPI, Query
from starlette.applications import Starlette

from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.migrate import upgrade_to_head
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.routing import api_router
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service as tenancy
from xynergy.server import ServiceFactory, build_all_in_one
from xynergy.system_runtime.app import SLUG as SYSTEM_RUNTIME
from xynergy.system_runtime.app import create_system_runtime_app
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS, Catalogue, Operation
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.spec import WorkflowSpec
from xynergy.system_runtime.engine.host import system_database_url
from xynergy.system_runtime.models import WorkflowDefinition

BENCH_SERVICE = "bench-svc"
STEP_PATH = "/api/bench/step"
STEP_SCOPE = "content:read"
STEP_OPERATION = "bench.step"
DEFINITION = "bench-chain"
KEY_SCOPES = ("workflows:write", "workflows:read", STEP_SCOPE)
UNLIMITED = "1000000000/hour"
BASE_URL = "http://bench"
ENDED = ("succeeded", "failed", "cancelled")


# --- where the steps' calls arrive ----------------------------------------------------


@dataclass(slots=True)
class Arrivals:
    """When step calls reached the bench service.

    ``first``/``last`` keep one time per tag (run) only while ``keep_per_run`` is on
    (the overhead benchmark, a few hundred runs); the memory benchmark only counts,
    so the recorder itself cannot grow with the runs it measures.
    """

    keep_per_run: bool = True
    count: int = 0
    last_time: float = 0.0
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    _target: int = 0
    _reached: asyncio.Event | None = None

    def note(self, tag: str, index: int) -> None:
        now = time.perf_counter()
        self.count += 1
        self.last_time = now
        if self.keep_per_run:
            if index == 0:
                self.first[tag] = now
            self.last[tag] = now
        if self._reached is not None and self.count >= self._target:
            self._reached.set()

    def reset(self) -> None:
        self.count = 0
        self.last_time = 0.0
        self.first.clear()
        self.last.clear()
        self._reached = None

    async def wait_for_count(self, target: int, timeout: float) -> None:
        """Until ``target`` calls have arrived since the last reset."""
        self._target = target
        self._reached = asyncio.Event()
        if self.count >= target:
            return
        await asyncio.wait_for(self._reached.wait(), timeout)


ARRIVALS = Arrivals()

StepCaller = Annotated[AuthContext, Depends(require_scopes(STEP_SCOPE))]


def bench_service_app(settings: Settings) -> FastAPI:
    """The service every step calls: it notes the call and answers at once."""
    router = api_router(prefix="/api", tags=["bench"])

    @router.get("/bench/step")
    async def step(
        _caller: StepCaller,
        tag: Annotated[str, Query(max_length=64)],
        index: Annotated[int, Query(ge=0, le=10_000)],
    ) -> dict[str, Any]:
        """A no-op step: note the arrival, answer a small JSON body."""
        ARRIVALS.note(tag, index)
        return {"ok": True, "index": index}

    return create_service_app(
        slug=BENCH_SERVICE, title="bench service", settings=settings, routers=[router]
    )


STEP = Operation(
    STEP_OPERATION,
    BENCH_SERVICE,
    "GET",
    STEP_PATH,
    frozenset({STEP_SCOPE}),
    "Benchmark: a no-op call of the bench service.",
)


def chain_spec(steps: int) -> WorkflowSpec:
    """``steps`` operation steps in a chain (each waits for the one before), as a
    bare DBOS workflow calls its steps one after the other."""
    return WorkflowSpec.model_validate(
        {
            "name": DEFINITION,
            "inputs": {"tag": {"type": "string"}},
            "steps": [
                {
                    "id": f"s{index}",
                    "operation": STEP_OPERATION,
                    "input": {"tag": {"$ref": "/input/tag"}, "index": index},
                    "depends_on": [f"s{index - 1}"] if index else [],
                }
                for index in range(steps)
            ],
        }
    )


# --- settings and apps ----------------------------------------------------------------


def bench_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        database_url=database_url,
        internal_token_secret=secrets.token_urlsafe(48),
        access_log=False,
        gc_freeze_after_startup=False,
        rate_limits={name: UNLIMITED for name in DEFAULT_RATE_LIMITS},
    )


def runtime_settings(*, tenant_concurrency: int, poll_seconds: float) -> RuntimeSettings:
    # Explicit values: a developer's XYNERGY_RUNTIME_* must not change what is measured.
    return RuntimeSettings(
        tenant_concurrency=tenant_concurrency,
        worker_concurrency=max(32, tenant_concurrency),
        queue_poll_seconds=poll_seconds,
        executor_id="bench",
    )


def build_app(settings: Settings, runtime: RuntimeSettings | None) -> Starlette:
    """All-in-one with the bench service, plus the System Runtime when ``runtime``."""
    services: dict[str, ServiceFactory] = {BENCH_SERVICE: bench_service_app}
    if runtime is not None:
        catalogue: Catalogue = BUILT_IN_OPERATIONS.with_operations(STEP)
        services[SYSTEM_RUNTIME] = partial(
            create_system_runtime_app, runtime=runtime, catalogue=catalogue
        )
    return build_all_in_one(settings, services=services)


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan, and a client that calls it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield client


@dataclass(frozen=True, slots=True)
class Caller:
    tenant_id: str
    key_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}

    def step_context(self) -> AuthContext:
        """What a step acts as: the key, with only the step's scope (as the runtime
        grants an operation only its own scopes)."""
        return AuthContext(
            tenant_id=self.tenant_id,
            key_id=self.key_id,
            key_tenant_id=self.tenant_id,
            scopes=frozenset({STEP_SCOPE}),
        )


async def create_caller(platform: Platform, spec: WorkflowSpec | None) -> Caller:
    """A fresh tenant with a key for every scope the benchmark needs, and ``spec``
    stored as the tenant's own definition (version 1)."""
    async with unit_of_work(platform.sessionmaker) as session:
        tenant = await tenancy.create_tenant(session, name="bench-" + uuid.uuid4().hex[:8])
    async with unit_of_work(platform.sessionmaker) as session:
        issued = await tenancy.create_key(
            session, tenant_id=tenant.id, name="bench", scopes=list(KEY_SCOPES)
        )
        if spec is not None:
            session.add(
                WorkflowDefinition(
                    tenant_id=tenant.id,
                    name=spec.name,
                    version=1,
                    spec=spec.model_dump(mode="json"),
                    created_by_key_id=issued.key.id,
                )
            )
    return Caller(tenant_id=tenant.id, key_id=issued.key.id, secret=issued.secret)


# --- databases --------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(admin_url: str, statement: str) -> None:
    connection = await asyncpg.connect(_asyncpg_dsn(admin_url), timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class Databases:
    """Fresh, migrated databases, one per phase: a SQLite file copied from a migrated
    template, or a PostgreSQL database created from a migrated template database.
    Everything created is removed at the end, even on error."""

    def __init__(self, root: Path, postgres_admin_url: str | None) -> None:
        self._root = root
        self._admin = postgres_admin_url
        self._sqlite_template: Path | None = None
        self._pg_template: str | None = None
        self._pg_databases: list[str] = []

    async def prepare(self) -> None:
        template_dir = self._root / "template"
        template_dir.mkdir(parents=True)
        self._sqlite_template = template_dir / "xynergy.db"
        await asyncio.to_thread(
            upgrade_to_head,
            bench_settings(f"sqlite+aiosqlite:///{self._sqlite_template}", template_dir),
        )
        if self._admin is not None:
            self._pg_template = await self._create_pg(template=None)
            template_settings = bench_settings(self._pg_url(self._pg_template), template_dir)
            await asyncio.to_thread(upgrade_to_head, template_settings)
            # DBOS's own tables too, off the loop: DBOS.launch() migrates synchronously
            # on the app's loop, and its CREATE INDEX CONCURRENTLY waits for every open
            # transaction of the database, including one the blocked loop holds (the
            # runtime's metrics refresh): a fresh database could hang the launch.
            await asyncio.to_thread(
                DBOS.migrate,
                system_database_url(template_settings),
                schema=RuntimeSettings().dbos_schema,
            )

    def _pg_url(self, name: str) -> str:
        assert self._admin is not None
        return self._admin.rsplit("/", 1)[0] + "/" + name

    async def _create_pg(self, template: str | None) -> str:
        assert self._admin is not None
        name = "xyn_bench_rt_" + uuid.uuid4().hex[:12]
        # Generated hex names only; CREATE DATABASE takes no bound parameters.
        statement = "CREATE DATABASE " + name  # guard: allow XG001 generated identifier
        if template is not None:
            statement += " TEMPLATE " + template  # guard: allow XG001 generated identifier
        await _pg_admin(self._admin, statement)
        self._pg_databases.append(name)
        return name

    async def fresh(self, kind: str) -> tuple[str, Path]:
        """(database URL, data dir) of a new, migrated, empty database."""
        data_dir = self._root / uuid.uuid4().hex[:8]
        data_dir.mkdir()
        if kind == "SQLite":
            assert self._sqlite_template is not None
            target = data_dir / "xynergy.db"
            shutil.copy(self._sqlite_template, target)
            return f"sqlite+aiosqlite:///{target}", data_dir
        return self._pg_url(await self._create_pg(template=self._pg_template)), data_dir

    async def close(self) -> None:
        if self._admin is None:
            return
        # Templates last: a database created from one no longer depends on it, but
        # the order keeps the template around for any straggler.
        for name in reversed(self._pg_databases):
            drop = "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"
            await _pg_admin(self._admin, drop)  # guard: allow XG001 generated identifier
        self._pg_databases.clear()

    @property
    def kinds(self) -> list[str]:
        return ["SQLite"] + (["PostgreSQL"] if self._admin is not None else [])


# --- output ------------------------------------------------------------------------------


def quiet_logs() -> None:
    """Platform and DBOS logs to stderr, warnings up: stdout is the table."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
    )
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
