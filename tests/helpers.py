"""Helpers for tests: run an app with its lifespan, issue keys, read metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from starlette.types import ASGIApp

from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.repository import TenantRepository

TEST_BASE_URL = "http://testserver"


@asynccontextmanager
async def running(app: Any, *, client_ip: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """Start ``app``'s lifespan and yield a client that calls it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
        async with httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL) as client:
            yield client


def client_for(app: ASGIApp, *, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    """Another client for an app that is already running."""
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    return httpx.AsyncClient(transport=transport, base_url=TEST_BASE_URL)


async def ensure_tenant(platform: Platform, name: str) -> str:
    """The id of tenant ``name``, created if needed."""
    async with unit_of_work(platform.sessionmaker) as session:
        existing = await TenantRepository(session).get_by_name(name)
        if existing is not None:
            return existing.id
        return (await service.create_tenant(session, name=name)).id


async def issue_key(
    platform: Platform,
    *,
    tenant: str = "acme",
    scopes: Sequence[str] = ("content:read",),
    expires_in: timedelta | None = None,
) -> tuple[str, service.IssuedKey]:
    """Issue a key for tenant ``tenant`` (created if needed): (tenant id, issued key)."""
    tenant_id = await ensure_tenant(platform, tenant)
    async with unit_of_work(platform.sessionmaker) as session:
        issued = await service.create_key(
            session, tenant_id=tenant_id, name="test", scopes=list(scopes), expires_in=expires_in
        )
    return tenant_id, issued


def auth(secret: str) -> dict[str, str]:
    """Headers presenting ``secret`` as a bearer key."""
    return {"Authorization": f"Bearer {secret}"}


def scrape(platform: Platform) -> str:
    """What a ``metrics:read`` scrape of ``/metrics`` shows: the platform's exposition.

    Read straight from the registry, so reading metrics neither needs a key nor
    counts against the ``metrics`` rate class of the test's traffic.
    """
    return platform.metrics.render().decode()


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition ``text`` (0 if absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


STATUS_PROBE_INTERVAL_SECONDS = 0.02


async def seconds_until_status(
    client: httpx.AsyncClient, headers: dict[str, str], expected: int, bound: float
) -> float:
    """Seconds until GET /admin/keys answers ``expected``; fails past ``bound``.

    For propagation tests (a revocation reaching another replica): polls, never sleeps
    a fixed time.
    """
    started = time.monotonic()
    while True:
        response = await client.get("/admin/keys", headers=headers)
        elapsed = time.monotonic() - started
        if response.status_code == expected:
            return elapsed
        assert elapsed < bound, f"still {response.status_code} after {elapsed:.2f}s"
        await asyncio.sleep(STATUS_PROBE_INTERVAL_SECONDS)


def error_code(body: dict[str, Any]) -> str:
    """The error code of an error body in either shape: the platform's
    ``{"error": code, ...}`` or OpenAI's ``{"error": {"code": ...}}`` (under /v1)."""
    error = body["error"]
    return str(error["code"] if isinstance(error, dict) else error)


def error_request_id_matches(body: dict[str, Any], request_id: str) -> bool:
    """Whether an error body in either shape carries ``request_id``."""
    error = body["error"]
    if isinstance(error, dict):
        return f"(request id: {request_id})" in str(error["message"])
    return bool(body["request_id"] == request_id)
