"""A tiny test service mounted beside the System Runtime, and a harness around both.

The service (slug ``runtime-test-svc``) measures what the runtime does to it:
concurrency (in flight now and at most, per tenant too), calls per tag, call
intervals, handler invocations per ``Idempotency-Key`` and side effects counted
by that key. Tests script its failures at runtime through :class:`Probe`.

Workflow definitions are stored straight into ``runtime_definitions`` so these
tests do not depend on the definitions API.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from tests.helpers import auth, ensure_tenant, issue_key
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import BadRequest, RateLimited, UpstreamUnavailable
from xynergy.platform.routing import api_router, idempotency_exempt, raises
from xynergy.platform.runtime import Platform
from xynergy.server import SERVICES, ServiceFactory, build_all_in_one
from xynergy.system_runtime.app import SLUG as RUNTIME_SLUG
from xynergy.system_runtime.app import create_system_runtime_app
from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS, Catalogue, Operation
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.spec import WorkflowSpec
from xynergy.system_runtime.models import RunRecord, WorkflowDefinition

__all__ = [
    "ENDED",
    "RUNS",
    "TEST_CATALOGUE",
    "TEST_SCOPES",
    "TEST_SERVICE",
    "Harness",
    "Probe",
    "harness",
    "runtime_settings",
]

TEST_SERVICE = "runtime-test-svc"
RUNS = f"/{RUNTIME_SLUG}/api/workflows"
ENDED = ("succeeded", "failed", "cancelled")
_READ, _WRITE, _GUARDED = "content:read", "content:write", "intake:admin"
# Every scope a run of the test definitions (and of ai.generate) needs.
TEST_SCOPES = ("workflows:read", "workflows:write", _READ, _WRITE, "ai:generate")

TEST_CATALOGUE = BUILT_IN_OPERATIONS.with_operations(
    Operation("test.sleep", TEST_SERVICE, "POST", "/api/sleep", frozenset({_READ}), "Sleep."),
    Operation(
        "test.flaky", TEST_SERVICE, "POST", "/api/fail-until", frozenset({_READ}), "Fail as told."
    ),
    Operation("test.create", TEST_SERVICE, "POST", "/api/create", frozenset({_WRITE}), "Write."),
    Operation(
        "test.guarded", TEST_SERVICE, "POST", "/api/guarded", frozenset({_GUARDED}), "Admin."
    ),
)


def runtime_settings(**overrides: Any) -> RuntimeSettings:
    """Fast retries and queue polling; anything else as the test asks."""
    values: dict[str, Any] = {
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 5.0,
        "queue_poll_seconds": 0.05,
        # A test ending with a run parked (approval, wait) does not wait out the
        # production grace; tests/system_runtime/test_shutdown.py sets its own.
        "shutdown_grace_seconds": 0.5,
    }
    values.update(overrides)
    return RuntimeSettings(**values)


@dataclass
class Probe:
    """What the test service saw, and the failures it is told to answer."""

    in_flight: int = 0
    max_in_flight: int = 0
    tenant_in_flight: Counter[str] = field(default_factory=Counter)
    tenant_max_in_flight: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)  # per tag
    call_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    intervals: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # /api/create: handler invocations per Idempotency-Key, and the records it made.
    invocations_by_key: Counter[str] = field(default_factory=Counter)
    records_by_key: dict[str, str] = field(default_factory=dict)
    side_effects: Counter[str] = field(default_factory=Counter)  # records made, per tag
    # /api/fail-until: statuses to answer (in order) before answering 200, per tag;
    # a permanent status answers until cleared.
    plans: dict[str, deque[int]] = field(default_factory=dict)
    permanent: dict[str, int] = field(default_factory=dict)
    retry_after: str | None = None

    def fail(self, tag: str, *statuses: int) -> None:
        self.plans[tag] = deque(statuses)

    def fail_always(self, tag: str, status: int) -> None:
        self.permanent[tag] = status

    def heal(self, tag: str) -> None:
        self.permanent.pop(tag, None)
        self.plans.pop(tag, None)


class Work(BaseModel):
    tag: str = Field(max_length=64)
    ms: int = Field(default=0, ge=0, le=10_000)


Reader = Annotated[AuthContext, Depends(require_scopes(_READ))]
Writer = Annotated[AuthContext, Depends(require_scopes(_WRITE))]
Guarded = Annotated[AuthContext, Depends(require_scopes(_GUARDED))]


def _error(status: int, code: str, retry_after: str | None = None) -> JSONResponse:
    headers = {"Retry-After": retry_after} if retry_after is not None else None
    body = {"error": code, "detail": f"told to answer {status}", "request_id": None}
    return JSONResponse(body, status_code=status, headers=headers)


def create_test_service_app(settings: Settings, *, probe: Probe) -> FastAPI:
    router = api_router(prefix="/api", tags=["runtime-test"])

    async def measured(tenant_id: str, work: Work) -> dict[str, Any]:
        probe.calls[work.tag] += 1
        started = time.monotonic()
        probe.call_times[work.tag].append(started)
        probe.in_flight += 1
        probe.tenant_in_flight[tenant_id] += 1
        probe.max_in_flight = max(probe.max_in_flight, probe.in_flight)
        probe.tenant_max_in_flight[tenant_id] = max(
            probe.tenant_max_in_flight[tenant_id], probe.tenant_in_flight[tenant_id]
        )
        try:
            await asyncio.sleep(work.ms / 1000)
        finally:
            probe.in_flight -= 1
            probe.tenant_in_flight[tenant_id] -= 1
            probe.intervals[work.tag].append((started, time.monotonic()))
        return {"tag": work.tag, "slept_ms": work.ms}

    @router.post("/sleep")
    @idempotency_exempt("a probe: every call is measured, none is a write")
    async def sleep(work: Work, caller: Reader) -> dict[str, Any]:
        return await measured(caller.tenant_id, work)

    @router.post("/guarded")
    async def guarded(work: Work, caller: Guarded) -> dict[str, Any]:
        return await measured(caller.tenant_id, work)

    @router.post("/fail-until")
    @raises(BadRequest, RateLimited, UpstreamUnavailable)
    async def fail_until(work: Work, caller: Reader) -> Any:
        probe.calls[work.tag] += 1
        probe.call_times[work.tag].append(time.monotonic())
        plan = probe.plans.get(work.tag)
        status = probe.permanent.get(work.tag) or (plan.popleft() if plan else None)
        if status == 400:  # noqa: PLR2004
            # Raised, not returned: a raised error is never stored by the platform's
            # Idempotency-Key layer, so the same key succeeds once the fake is fixed.
            raise BadRequest("told to answer 400")
        if status == 429:  # noqa: PLR2004
            headers = {"Retry-After": probe.retry_after} if probe.retry_after else None
            raise RateLimited("told to answer 429", headers=headers)
        if status is not None:
            return _error(status, "upstream_unavailable")
        await asyncio.sleep(work.ms / 1000)
        return {"tag": work.tag, "ok": True}

    @router.post("/create")
    async def create(work: Work, request: Request, caller: Writer) -> dict[str, Any]:
        key = request.headers.get("idempotency-key") or new_id()
        probe.invocations_by_key[key] += 1
        if key not in probe.records_by_key:
            probe.records_by_key[key] = new_id()
            probe.side_effects[work.tag] += 1
        if work.ms and probe.invocations_by_key[key] == 1:
            await asyncio.sleep(work.ms / 1000)  # the first call outlives its step's timeout
        return {"id": probe.records_by_key[key], "tag": work.tag}

    return create_service_app(
        slug=TEST_SERVICE, title="Runtime test service", settings=settings, routers=[router]
    )


def build_app(
    settings: Settings, probe: Probe, runtime: RuntimeSettings, catalogue: Catalogue
) -> Any:
    services: dict[str, ServiceFactory] = {
        **SERVICES,
        RUNTIME_SLUG: partial(create_system_runtime_app, runtime=runtime, catalogue=catalogue),
        TEST_SERVICE: partial(create_test_service_app, probe=probe),
    }
    return build_all_in_one(settings, services)


@dataclass
class Harness:
    app: Any
    client: httpx.AsyncClient
    platform: Platform
    probe: Probe
    tenant_id: str
    key_id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.secret)

    async def define(
        self,
        name: str,
        steps: Sequence[dict[str, Any]],
        *,
        tenant_id: str | None = None,
        **spec: Any,
    ) -> WorkflowSpec:
        """Store version 1 of definition ``name`` for the tenant (straight into the table)."""
        parsed = WorkflowSpec.model_validate({"name": name, "steps": list(steps), **spec})
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(
                WorkflowDefinition(
                    tenant_id=tenant_id or self.tenant_id,
                    name=name,
                    version=1,
                    spec=parsed.model_dump(mode="json"),
                    created_by_key_id=self.key_id,
                    created_at=utcnow(),
                )
            )
        return parsed

    async def start(
        self,
        name: str,
        run_input: dict[str, Any] | None = None,
        *,
        secret: str | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        headers = auth(secret or self.secret)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        body = {"definition": name, "input": run_input or {}}
        return await self.client.post(f"{RUNS}/start", json=body, headers=headers)

    async def started(self, name: str, run_input: dict[str, Any] | None = None) -> str:
        response = await self.start(name, run_input)
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    async def detail(self, run_id: str, *, secret: str | None = None) -> dict[str, Any]:
        response = await self.client.get(f"{RUNS}/{run_id}", headers=auth(secret or self.secret))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_for(
        self, run_id: str, statuses: Sequence[str] = ENDED, *, timeout: float = 15.0
    ) -> dict[str, Any]:
        """The run's detail once its status is one of ``statuses``; fails past ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            body = await self.detail(run_id)
            if body["status"] in statuses:
                return body
            assert time.monotonic() < deadline, f"run still {body['status']}: {body}"
            await asyncio.sleep(0.02)

    async def wait_for_step(
        self, run_id: str, step_id: str, status: str, *, timeout: float = 15.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            body = await self.detail(run_id)
            step = next(step for step in body["steps"] if step["id"] == step_id)
            if step["status"] == status:
                return body
            assert time.monotonic() < deadline, f"step {step_id} still {step['status']}: {body}"
            await asyncio.sleep(0.02)

    async def post(
        self, run_id: str, action: str, body: Any = None, *, secret: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"{RUNS}/{run_id}/{action}", json=body, headers=auth(secret or self.secret)
        )

    async def run_count(self, tenant_id: str | None = None) -> int:
        async with unit_of_work(self.platform.sessionmaker) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(RunRecord)
                .where(RunRecord.tenant_id == (tenant_id or self.tenant_id))
            )
        return int(count or 0)

    async def key(
        self, tenant: str = "acme", scopes: Sequence[str] = TEST_SCOPES
    ) -> tuple[str, str, str]:
        """Another key: (tenant id, key id, secret)."""
        tenant_id, issued = await issue_key(self.platform, tenant=tenant, scopes=scopes)
        return tenant_id, issued.key.id, issued.secret


@asynccontextmanager
async def harness(
    settings: Settings,
    *,
    runtime: RuntimeSettings | None = None,
    probe: Probe | None = None,
    scopes: Sequence[str] = TEST_SCOPES,
) -> AsyncIterator[Harness]:
    """All-in-one with the test service mounted, and a key of tenant ``acme``."""
    probe = probe or Probe()
    app = build_app(settings, probe, runtime or runtime_settings(), TEST_CATALOGUE)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            platform: Platform = app.state.platform
            await ensure_tenant(platform, "acme")
            tenant_id, issued = await issue_key(platform, tenant="acme", scopes=scopes)
            yield Harness(
                app=app,
                client=client,
                platform=platform,
                probe=probe,
                tenant_id=tenant_id,
                key_id=issued.key.id,
                secret=issued.secret,
            )


def op(
    step_id: str, operation: str, tag: str | None = None, ms: int = 0, **fields: Any
) -> dict[str, Any]:
    """An operation step of the test service (input: its tag and sleep)."""
    step_input: dict[str, Any] = {"tag": tag or step_id, "ms": ms}
    return {"id": step_id, "operation": operation, "input": step_input, **fields}
