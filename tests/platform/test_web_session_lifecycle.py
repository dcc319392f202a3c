"""How browser sessions end: with their key, at their expiry, at sign-out on any
replica, and how expired rows are deleted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import event, select, update

from tests.helpers import client_for, issue_key, running
from tests.platform.test_web_sessions import READ_WRITE, cookie, session_rows, sign_in
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy import service
from xynergy.platform.web_sessions import service as sessions_module
from xynergy.platform.web_sessions.models import WebSession
from xynergy.platform.web_sessions.service import MAINTENANCE_JOB

LONG_CACHE_TTL = 300.0
PROPAGATION_BOUND_SECONDS = 1.0


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    # Caches far longer than any test: only an explicit invalidation explains a
    # session ending in time.
    return make_settings(
        database_url=database_url,
        web_session_cache_ttl_seconds=LONG_CACHE_TTL,
        key_cache_ttl_seconds=LONG_CACHE_TTL,
        key_revocation_poll_seconds=60.0,
    )


@pytest.fixture
def aso(settings: Settings) -> FastAPI:
    return create_aso_engine_app(settings)


class TestTheKeyEndsItsSessions:
    async def test_revoking_the_key_refuses_its_session_at_once(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            token, _ = await sign_in(client, issued.secret)
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 200
            async with unit_of_work(platform.sessionmaker) as session:
                await service.revoke_key(
                    session,
                    tenant_id=issued.key.tenant_id,
                    key_id=issued.key.id,
                    invalidate=platform.key_verifier.invalidate,
                )
            refused = await client.get("/api/content", headers=cookie(token))
            assert refused.status_code == 401, refused.text
            assert "revoked" in refused.json()["detail"]
            assert (await client.get("/session", headers=cookie(token))).status_code == 401

    async def test_a_session_of_a_revoked_key_can_still_be_signed_out_of(
        self, aso: FastAPI
    ) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            token, body = await sign_in(client, issued.secret)
            async with unit_of_work(platform.sessionmaker) as session:
                await service.revoke_key(
                    session,
                    tenant_id=issued.key.tenant_id,
                    key_id=issued.key.id,
                    invalidate=platform.key_verifier.invalidate,
                )
            response = await client.delete(
                "/session", headers=cookie(token, **{"X-CSRF-Token": body["csrf_token"]})
            )
            assert response.status_code == 204, response.text
            assert "Max-Age=0" in response.headers["set-cookie"]
            assert await session_rows(platform) == 0

    async def test_the_key_expiring_ends_its_session(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            _, issued = await issue_key(
                aso.state.platform, scopes=READ_WRITE, expires_in=timedelta(seconds=1)
            )
            token, _ = await sign_in(client, issued.secret)
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 200
            await asyncio.sleep(1.1)
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 401


class TestExpiry:
    async def test_a_cached_session_past_its_lifetime_is_refused(
        self, aso: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async with running(aso) as client:
            _, issued = await issue_key(aso.state.platform, scopes=READ_WRITE)
            token, _ = await sign_in(client, issued.secret)
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 200
            lifetime = aso.state.platform.settings.web_session_ttl_seconds
            later = time.time() + lifetime + 1

            class _Later:
                @staticmethod
                def time() -> float:
                    return later

            monkeypatch.setattr(sessions_module, "time", _Later)
            refused = await client.get("/api/content", headers=cookie(token))
            assert refused.status_code == 401, refused.text
            assert "expired" in refused.json()["detail"]

    async def test_an_expired_row_is_refused_by_a_replica_that_never_saw_it(
        self, settings: Settings
    ) -> None:
        first, second = create_aso_engine_app(settings), create_aso_engine_app(settings)
        async with running(first) as client, running(second) as other:
            platform = first.state.platform
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            token, _ = await sign_in(client, issued.secret)
            async with unit_of_work(platform.sessionmaker) as session:
                await session.execute(
                    update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1))
                )
            assert (await other.get("/api/content", headers=cookie(token))).status_code == 401


class TestSignOutAcrossReplicas:
    async def test_sign_out_on_one_replica_is_seen_by_the_other_within_a_second(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        settings = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
            web_session_cache_ttl_seconds=LONG_CACHE_TTL,
        )
        replica_a, replica_b = create_aso_engine_app(settings), create_aso_engine_app(settings)
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, issued = await issue_key(replica_a.state.platform, scopes=READ_WRITE)
            token, body = await sign_in(client_a, issued.secret)
            # Replica B caches the session.
            assert (await client_b.get("/api/content", headers=cookie(token))).status_code == 200
            signed_out = await client_a.delete(
                "/session", headers=cookie(token, **{"X-CSRF-Token": body["csrf_token"]})
            )
            assert signed_out.status_code == 204
            started = time.monotonic()
            while (await client_b.get("/api/content", headers=cookie(token))).status_code != 401:
                assert time.monotonic() - started < PROPAGATION_BOUND_SECONDS
                await asyncio.sleep(0.02)

    async def test_without_redis_the_other_replica_honours_it_until_its_cache_ttl(
        self, settings: Settings
    ) -> None:
        # The documented bound: without Redis a sign-out reaches other replicas
        # within web_session_cache_ttl_seconds (this replica: at once).
        replica_a, replica_b = create_aso_engine_app(settings), create_aso_engine_app(settings)
        async with running(replica_a) as client_a, running(replica_b) as client_b:
            _, issued = await issue_key(replica_a.state.platform, scopes=READ_WRITE)
            token, body = await sign_in(client_a, issued.secret)
            assert (await client_b.get("/api/content", headers=cookie(token))).status_code == 200
            await client_a.delete(
                "/session", headers=cookie(token, **{"X-CSRF-Token": body["csrf_token"]})
            )
            assert (await client_a.get("/api/content", headers=cookie(token))).status_code == 401
            assert (await client_b.get("/api/content", headers=cookie(token))).status_code == 200


class TestCache:
    async def test_a_signed_in_page_reads_no_session_or_key_row_per_request(
        self, aso: FastAPI
    ) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            token, _ = await sign_in(client, issued.secret)
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 200
            statements: list[str] = []

            def capture(*args: object) -> None:
                statements.append(str(args[2]))

            event.listen(platform.engine.sync_engine, "before_cursor_execute", capture)
            try:
                for _ in range(5):
                    response = await client.get("/api/content", headers=cookie(token))
                    assert response.status_code == 200
            finally:
                event.remove(platform.engine.sync_engine, "before_cursor_execute", capture)
            touching = [sql for sql in statements if "web_sessions" in sql or "api_keys" in sql]
            assert touching == []


class TestUpkeep:
    async def test_the_maintenance_job_deletes_expired_sessions_in_batches(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = create_aso_engine_app(
            make_settings(database_url=database_url, web_session_purge_batch_size=2)
        )
        async with running(app) as client:
            platform = app.state.platform
            assert MAINTENANCE_JOB in platform.maintenance_jobs
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            tokens = [(await sign_in(client, issued.secret))[0] for _ in range(6)]
            async with unit_of_work(platform.sessionmaker) as session:
                expired = select(WebSession.token_hash).limit(5)
                hashes = list((await session.scalars(expired)).all())
                await session.execute(
                    update(WebSession)
                    .where(WebSession.token_hash.in_(hashes))
                    .values(expires_at=utcnow() - timedelta(seconds=1))
                )
            await platform.maintenance_jobs[MAINTENANCE_JOB]()
            async with platform.sessionmaker() as session:
                kept = list((await session.scalars(select(WebSession.token_hash))).all())
            assert len(kept) == 1
            assert kept[0] not in hashes
            assert len(tokens) == 6

    async def test_last_seen_is_written_in_batches(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            _, issued = await issue_key(platform, scopes=READ_WRITE)
            token, _ = await sign_in(client, issued.secret)
            async with platform.sessionmaker() as session:
                signed_in_at = (await session.scalars(select(WebSession.last_seen_at))).one()
            await asyncio.sleep(0.01)
            other = client_for(aso)
            async with other:
                assert (await other.get("/api/content", headers=cookie(token))).status_code == 200
            await platform.web_sessions.flush_last_seen()
            async with platform.sessionmaker() as session:
                seen = (await session.scalars(select(WebSession.last_seen_at))).one()
            assert seen > signed_in_at
