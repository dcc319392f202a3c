"""A locked database is a bounded wait, then 503 with Retry-After: never a 500.

Another connection holds the lock a write needs (SQLite's write lock, or an
EXCLUSIVE table lock on PostgreSQL) while a request writes; the wait is bounded
by the settings (SQLite busy timeout, PostgreSQL lock_timeout).
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import insert, text
from sqlalchemy.exc import DBAPIError
from starlette.types import Receive, Scope, Send

from tests.helpers import auth, issue_key, running
from tests.platform.db.lock_holder import write_lock_held
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings
from xynergy.platform.db.busy import is_database_busy
from xynergy.platform.db.engine import create_engine_from_settings
from xynergy.platform.db.session import SessionDep, unit_of_work
from xynergy.platform.middleware import RequestContextMiddleware
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.routing import api_router
from xynergy.platform.tenancy.models import Tenant
from xynergy.platform.tenancy.repository import TenantRepository

WAIT_MS = 200
RETRY_AFTER_SECONDS = 7
WriteAuth = Annotated[AuthContext, Depends(require_scopes("content:write"))]


def writes_router() -> APIRouter:
    router = api_router()

    @router.post("/flushed/{name}", status_code=201)
    async def flushed(name: str, session: SessionDep, _auth: WriteAuth) -> dict[str, str]:
        """The INSERT runs in the endpoint (flush)."""
        session.add(Tenant(name=name))
        await session.flush()
        return {"name": name}

    @router.post("/at-commit/{name}", status_code=201)
    async def at_commit(name: str, session: SessionDep, _auth: WriteAuth) -> dict[str, str]:
        """Nothing is flushed here: the INSERT runs at the session dependency's commit."""
        session.add(Tenant(name=name))
        return {"name": name}

    return router


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(
        database_url=database_url,
        sqlite_busy_timeout_ms=WAIT_MS,
        postgres_lock_timeout_ms=WAIT_MS,
        database_busy_retry_after_seconds=RETRY_AFTER_SECONDS,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(slug="svc", title="svc", settings=settings, routers=[writes_router()])
    async with running(app) as client:
        _, issued = await issue_key(app.state.platform, scopes=["content:write"])
        client.headers.update(auth(issued.secret))
        client.app = app  # type: ignore[attr-defined]
        yield client


async def tenant_exists(app: FastAPI, name: str) -> bool:
    async with unit_of_work(app.state.platform.sessionmaker) as session:
        return await TenantRepository(session).get_by_name(name) is not None


def assert_database_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == "database_busy"
    assert "Retry-After" in body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


class TestWriteWhileLocked:
    @pytest.mark.parametrize("path", ["flushed", "at-commit"])
    async def test_waits_then_503_with_retry_after_and_nothing_written(
        self, client: httpx.AsyncClient, database_url: str, path: str
    ) -> None:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        async with write_lock_held(database_url, "tenants"):
            response = await client.post(f"/{path}/while-locked")
        assert_database_busy(response)
        assert not await tenant_exists(app, "while-locked")

    async def test_the_same_write_succeeds_once_the_lock_is_released(
        self, client: httpx.AsyncClient, database_url: str
    ) -> None:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        async with write_lock_held(database_url, "tenants"):
            assert (await client.post("/at-commit/retried")).status_code == 503
        response = await client.post("/at-commit/retried")
        assert response.status_code == 201, response.text
        assert await tenant_exists(app, "retried")


class TestPoolExhausted:
    """Every pooled connection held for the whole pool timeout: 503, not 500."""

    @pytest.fixture
    def settings(self, make_settings: Callable[..., Settings], database_url: str) -> Settings:
        return make_settings(
            database_url=database_url,
            database_pool_size=1,
            database_max_overflow=0,
            database_pool_timeout_seconds=WAIT_MS / 1000,
            database_busy_retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    async def test_a_request_that_cannot_get_a_connection_is_503(
        self, client: httpx.AsyncClient
    ) -> None:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        async with app.state.platform.engine.connect():
            response = await client.post("/flushed/no-connection")
        assert_database_busy(response)
        assert not await tenant_exists(app, "no-connection")

    async def test_a_key_lookup_that_cannot_get_a_connection_is_503(
        self, client: httpx.AsyncClient
    ) -> None:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        _, fresh = await issue_key(app.state.platform, scopes=["content:write"])
        async with app.state.platform.engine.connect():
            response = await client.post("/flushed/not-verified", headers=auth(fresh.secret))
        assert_database_busy(response)


async def _write_a_tenant(settings: Settings, name: str) -> None:
    engine = create_engine_from_settings(settings)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(Tenant).values(id=name, name=name))
    finally:
        await engine.dispose()


class TestOutsideTheAppHandlers:
    """An error no FastAPI handler sees reaches RequestContextMiddleware's last resort."""

    @staticmethod
    def wrapped(settings: Settings, raw: Any) -> httpx.AsyncClient:
        app = RequestContextMiddleware(
            raw, service="raw", settings=settings, metrics=lambda: metrics
        )
        metrics = PlatformMetrics()
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    async def test_a_busy_database_is_503_not_500(
        self, settings: Settings, database_url: str
    ) -> None:
        async def raw(scope: Scope, receive: Receive, send: Send) -> None:
            await _write_a_tenant(settings, "a" * 32)

        async with self.wrapped(settings, raw) as client:
            async with write_lock_held(database_url, "tenants"):
                response = await client.post("/anything")
        assert_database_busy(response)

    async def test_an_unreachable_database_is_503_not_500(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        with socket.socket() as probe:  # a loopback port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        unreachable = make_settings(
            database_url=f"postgresql+asyncpg://127.0.0.1:{closed_port}/test",
            database_unavailable_retry_after_seconds=RETRY_AFTER_SECONDS,
        )

        async def raw(scope: Scope, receive: Receive, send: Send) -> None:
            await _write_a_tenant(unreachable, "b" * 32)

        async with self.wrapped(unreachable, raw) as client:
            response = await client.post("/anything")
        assert response.status_code == 503
        assert response.json()["error"] == "database_unavailable"
        assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)

    async def test_another_database_error_is_still_a_500(
        self, settings: Settings, database_url: str
    ) -> None:
        async def raw(scope: Scope, receive: Receive, send: Send) -> None:
            engine = create_engine_from_settings(settings)
            try:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT * FROM no_such_table"))
            finally:
                await engine.dispose()

        async with self.wrapped(settings, raw) as client:
            response = await client.post("/anything")
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert "retry-after" not in response.headers


class TestIsDatabaseBusy:
    async def test_a_lock_wait_that_ran_out_is_busy(
        self, settings: Settings, database_url: str
    ) -> None:
        async with write_lock_held(database_url, "tenants"):
            with pytest.raises(DBAPIError) as raised:
                await _write_a_tenant(settings, "b" * 32)
        assert is_database_busy(raised.value)

    async def test_other_database_errors_are_not(self, settings: Settings) -> None:
        engine = create_engine_from_settings(settings)
        try:
            with pytest.raises(DBAPIError) as raised:
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT * FROM no_such_table"))
        finally:
            await engine.dispose()
        assert not is_database_busy(raised.value)

    def test_an_upgrade_refused_at_once_is_busy(self) -> None:
        # SQLITE_BUSY_SNAPSHOT and friends: extended codes of SQLITE_BUSY.
        error = sqlite3.OperationalError("database is locked")
        error.sqlite_errorcode = 517  # type: ignore[attr-defined]
        assert is_database_busy(error)
