"""PostgreSQL down: 503 database_unavailable with Retry-After, never a 500; then recovery.

The app reaches this session's own database through a TCP proxy the test
stops (new connections refused, open ones cut) and starts again: the shared
PostgreSQL server is never touched. A connection lost mid-request is the
request's own backend terminated with ``pg_terminate_backend``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Depends
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

from tests.helpers import auth, issue_key, running
from tests.platform.outage_servers import TcpProxy, free_port
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.keys import generate_key
from xynergy.platform.config import Settings
from xynergy.platform.db.busy import is_database_unavailable
from xynergy.platform.db.session import SessionDep
from xynergy.platform.routing import api_router
from xynergy.platform.tenancy.models import Tenant

pytestmark = [pytest.mark.postgres]

RETRY_AFTER_SECONDS = 7
POLL_SECONDS = 0.05
RECOVERY_DEADLINE_SECONDS = 10.0
ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]
PLATFORM_SHAPE = {"error", "detail", "request_id"}


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))


def probe_router() -> APIRouter:
    router = api_router()

    @router.get("/tenants/count")
    async def count(session: SessionDep, _auth: ReadAuth) -> dict[str, int]:
        """Reads through the request's session."""
        total = await session.scalar(select(func.count()).select_from(Tenant))
        return {"count": int(total or 0)}

    @router.post("/backend/terminate")
    async def terminate(session: SessionDep, _auth: ReadAuth) -> dict[str, int]:
        """This request's own backend is terminated, then used again."""
        await session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        total = await session.scalar(select(func.count()).select_from(Tenant))
        return {"count": int(total or 0)}

    return router


@pytest.fixture
async def proxy(pg_database_url: str) -> AsyncIterator[TcpProxy]:
    target = urlsplit(pg_database_url)
    forwarder = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await forwarder.start()
    try:
        yield forwarder
    finally:
        await forwarder.stop()


@pytest.fixture
def settings(
    make_settings: Callable[..., Settings], pg_database_url: str, proxy: TcpProxy
) -> Settings:
    return make_settings(
        database_url=with_port(pg_database_url, proxy.port),
        database_unavailable_retry_after_seconds=RETRY_AFTER_SECONDS,
        database_pool_timeout_seconds=2,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_service_app(slug="svc", title="svc", settings=settings, routers=[probe_router()])
    async with running(app) as client:
        _, issued = await issue_key(app.state.platform, scopes=["content:read"])
        client.headers.update(auth(issued.secret))
        client.app = app  # type: ignore[attr-defined]
        yield client


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert set(body) == PLATFORM_SHAPE
    assert body["error"] == "database_unavailable"
    assert response.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)


async def eventually_ok(client: httpx.AsyncClient, path: str) -> httpx.Response:
    deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
    while True:
        response = await client.get(path)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(POLL_SECONDS)


class TestDatabaseDown:
    async def test_reads_answer_503_then_succeed_after_recovery(
        self, client: httpx.AsyncClient, proxy: TcpProxy
    ) -> None:
        before = await client.get("/tenants/count")
        await proxy.stop()  # open pooled connections cut, new ones refused
        first = await client.get("/tenants/count")
        again = await client.get("/tenants/count")
        await proxy.start()
        after = await eventually_ok(client, "/tenants/count")

        assert before.status_code == 200, before.text
        assert_database_unavailable(first)
        assert_database_unavailable(again)
        assert after.status_code == 200, after.text
        assert after.json() == before.json()

    async def test_a_key_not_yet_verified_gets_503_not_401_or_500(
        self, client: httpx.AsyncClient, proxy: TcpProxy
    ) -> None:
        app = client.app  # type: ignore[attr-defined]
        _, fresh = await issue_key(app.state.platform, scopes=["content:read"])
        await proxy.stop()
        refused = await client.get("/tenants/count", headers=auth(fresh.secret))
        await proxy.start()

        assert_database_unavailable(refused)

    async def test_nothing_listening_at_all(
        self, make_settings: Callable[..., Settings], pg_database_url: str
    ) -> None:
        settings = make_settings(
            database_url=with_port(pg_database_url, free_port()),
            database_unavailable_retry_after_seconds=RETRY_AFTER_SECONDS,
        )
        app = create_service_app(
            slug="svc", title="svc", settings=settings, routers=[probe_router()]
        )
        async with running(app) as client:
            response = await client.get("/tenants/count", headers=auth(generate_key().plaintext))

        assert_database_unavailable(response)


class TestConnectionLostMidRequest:
    async def test_terminated_backend_answers_503_and_the_next_request_succeeds(
        self, client: httpx.AsyncClient
    ) -> None:
        lost = await client.post("/backend/terminate")
        after = await client.get("/tenants/count")

        assert_database_unavailable(lost)
        assert after.status_code == 200, after.text


class TestClassification:
    @pytest.mark.parametrize(
        "error",
        [
            asyncpg.TooManyConnectionsError("sorry, too many clients already"),
            asyncpg.CannotConnectNowError("the database system is starting up"),
            asyncpg.ConnectionDoesNotExistError("connection was closed"),
            ConnectionRefusedError(111, "Connect call failed"),
            TimeoutError(),
        ],
        ids=["too-many-connections", "starting-up", "connection-lost", "refused", "timeout"],
    )
    def test_connection_failures_are_unavailable(self, error: Exception) -> None:
        assert is_database_unavailable(error)

    def test_a_query_error_is_not(self) -> None:
        assert not is_database_unavailable(asyncpg.UndefinedTableError("no such table"))


class TestRevocationPollLog:
    async def test_logged_once_per_outage_then_a_summary(
        self, make_settings: Callable[..., Settings], pg_database_url: str, proxy: TcpProxy
    ) -> None:
        poll = 0.05
        settings = make_settings(
            database_url=with_port(pg_database_url, proxy.port), key_revocation_poll_seconds=poll
        )
        app = create_service_app(slug="svc", title="svc", settings=settings, routers=[])
        async with running(app):
            with capture_logs() as logs:
                await proxy.stop()
                await asyncio.sleep(poll * 10)
                await proxy.start()
                await asyncio.sleep(poll * 10)

        events = [entry["event"] for entry in logs]
        assert events.count("keys.revocation_epoch_unreadable") == 1
        summaries = [e for e in logs if e["event"] == "keys.revocation_epoch_readable_again"]
        assert len(summaries) == 1
        assert summaries[0]["failed_reads"] > 1


class TestIdempotencyRecordSettledAfterOutage:
    """A key whose outcome could not be stored (the database went away) is settled
    in the background once it is back: no 409s until the pending timeout, and no
    second run of a write that committed."""

    @pytest.mark.parametrize("outcome", ["release", "finish"])
    async def test_settled_when_the_database_returns(
        self,
        make_settings: Callable[..., Settings],
        pg_database_url: str,
        proxy: TcpProxy,
        outcome: str,
    ) -> None:
        from starlette.responses import JSONResponse

        from xynergy.platform.idempotency_models import IdempotencyRecord, RecordState
        from xynergy.platform.idempotency_store import Claim, IdempotencyStore
        from xynergy.platform.runtime import Platform

        settings = make_settings(
            database_url=with_port(pg_database_url, proxy.port),
            database_unavailable_retry_after_seconds=1,
            database_pool_timeout_seconds=2,
        )
        platform = await Platform.open(settings)
        try:
            key = f"outage-{outcome}-{time.monotonic_ns()}"
            store = IdempotencyStore(
                platform.sessionmaker,
                settings,
                tenant_id="t-outage",
                key=key,
                retries=platform.idempotency_retries,
            )
            claim = await store.claim("fingerprint")
            assert isinstance(claim, Claim)
            await proxy.stop()
            with capture_logs() as logs:
                if outcome == "release":
                    await store.release(claim)
                else:
                    await store.finish(claim, "fingerprint", JSONResponse({"ok": True}, 201))
            await proxy.start()
            deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
            while True:
                async with platform.sessionmaker() as session:
                    record = await session.scalar(
                        select(IdempotencyRecord).where(IdempotencyRecord.idempotency_key == key)
                    )
                settled = (
                    record is None
                    if outcome == "release"
                    else record is not None and record.state == RecordState.DONE
                )
                if settled or time.monotonic() > deadline:
                    break
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await platform.close()
        assert settled, record
        failed = [entry for entry in logs if entry["event"].startswith("idempotency.")]
        assert [entry.get("retried_in_background") for entry in failed] == [True]
