"""Who may follow a run: authenticated before the upgrade is accepted, by a key header
or a single-use ticket, and only in the run's own tenant."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from tests.helpers import auth
from tests.system_runtime.live_support import served, ws_events
from tests.system_runtime.support import Harness, harness, op, runtime_settings
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Unauthorized
from xynergy.platform.tenancy import service as tenancy
from xynergy.system_runtime.live.tickets import TicketStore

TICKETS = "/system-runtime/api/ws-tickets"
ONE_STEP = [op("a", "test.sleep", ms=10)]


async def _finished_run(h: Harness) -> str:
    await h.define("one", ONE_STEP)
    run_id = await h.started("one")
    await h.wait_for(run_id)
    return run_id


async def _refused(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP answer to an upgrade the server refuses before accepting it."""
    with pytest.raises(InvalidStatus) as refused:
        await ws_events(url, headers)
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}")


async def _ticket(h: Harness, secret: str | None = None) -> dict[str, Any]:
    response = await h.client.post(TICKETS, headers=auth(secret or h.secret))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


class TestUpgradeWithAKey:
    async def test_without_credentials_the_upgrade_is_refused_with_401(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            async with served(h) as server:
                status, body = await _refused(server.ws_url(run_id))
        assert status == 401
        assert body["error"] == "unauthorized"
        assert set(body) == {"error", "detail", "request_id"}

    async def test_a_key_in_the_url_is_not_accepted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            async with served(h) as server:
                for query in (f"api_key={h.secret}", f"key={h.secret}", f"ticket={h.secret}"):
                    status, _ = await _refused(server.ws_url(run_id, query))
                    assert status == 401, query

    async def test_a_bearer_or_api_key_header_is_accepted(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            async with served(h) as server:
                for headers in (h.headers, {"X-API-Key": h.secret}):
                    events, code, _ = await ws_events(server.ws_url(run_id), headers)
                    assert [e["type"] for e in events] == ["snapshot", "run.finished"]
                    assert code == 1000

    async def test_a_key_without_workflows_read_is_refused_with_403(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            _, _, secret = await h.key(scopes=("content:read",))
            async with served(h) as server:
                status, body = await _refused(server.ws_url(run_id), auth(secret))
        assert (status, body["error"]) == (403, "forbidden")


class TestTenancy:
    async def test_another_tenants_run_is_404_on_websocket_and_sse(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _finished_run(h)
            _, _, other = await h.key(tenant="globex")
            async with served(h) as server:
                status, body = await _refused(server.ws_url(run_id), auth(other))
                assert (status, body["error"]) == (404, "not_found")
                async with httpx.AsyncClient() as client:
                    response = await client.get(server.sse_url(run_id), headers=auth(other))
                assert response.status_code == 404
                assert response.json()["error"] == "not_found"
                # Nor through a ticket minted by the other tenant.
                ticket = (await _ticket(h, other))["ticket"]
                status, _ = await _refused(server.ws_url(run_id, f"ticket={ticket}"))
                assert status == 404
                # An id that cannot be a run's is the same 404.
                status, _ = await _refused(server.ws_url("not-a-run"), h.headers)
                assert status == 404


class TestTickets:
    async def test_a_ticket_admits_one_connection_once(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            issued = await _ticket(h)
            expires = datetime.fromisoformat(issued["expires_at"])
            assert (
                timedelta(seconds=25)
                < expires - datetime.now(expires.tzinfo)
                <= timedelta(seconds=30)
            )
            async with served(h) as server:
                url = server.ws_url(run_id, f"ticket={issued['ticket']}")
                events, code, _ = await ws_events(url)
                assert [e["type"] for e in events] == ["snapshot", "run.finished"]
                status, body = await _refused(url)
        assert code == 1000
        assert (status, body["error"]) == (401, "unauthorized")

    async def test_a_ticket_expires(self, make_settings: Callable[..., Settings]) -> None:
        runtime = runtime_settings(ws_ticket_ttl_seconds=1)
        async with harness(make_settings(), runtime=runtime) as h:
            run_id = await _finished_run(h)
            ticket = (await _ticket(h))["ticket"]
            await asyncio.sleep(1.2)
            async with served(h) as server:
                status, _ = await _refused(server.ws_url(run_id, f"ticket={ticket}"))
        assert status == 401

    async def test_a_ticket_of_a_revoked_key_admits_nothing(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            run_id = await _finished_run(h)
            tenant_id, key_id, secret = await h.key()
            ticket = (await _ticket(h, secret))["ticket"]
            async with unit_of_work(h.platform.sessionmaker) as session:
                await tenancy.revoke_key(
                    session,
                    tenant_id=tenant_id,
                    key_id=key_id,
                    invalidate=h.platform.key_verifier.invalidate,
                )
            async with served(h) as server:
                status, _ = await _refused(server.ws_url(run_id, f"ticket={ticket}"))
        assert status == 401

    async def test_minting_needs_workflows_read(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            _, _, secret = await h.key(scopes=("content:read",))
            response = await h.client.post(TICKETS, headers=auth(secret))
            assert response.status_code == 403
            response = await h.client.post(TICKETS)
            assert response.status_code == 401

    async def test_with_redis_a_ticket_is_single_use_across_replicas(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        async with harness(settings) as h:
            run_id = await _finished_run(h)
            first, second = (await _ticket(h))["ticket"], (await _ticket(h))["ticket"]
            # Stored in Redis (every replica reads it), by its digest only.
            redis = h.platform.redis
            assert redis is not None
            keys = [key async for key in redis.scan_iter(match=redis_prefix + "*")]
            assert sum(b"ws-ticket" in key for key in keys) == 2
            assert not any(first.encode() in key or second.encode() in key for key in keys)
            # Another replica's store (same Redis, nothing shared in process) redeems one.
            other_replica = TicketStore(
                redis=redis,
                key_prefix=redis_prefix,
                ttl_seconds=30,
                max_in_process=10,
                sessions=h.platform.sessionmaker,
            )
            assert (await other_replica.redeem(first)).tenant_id == h.tenant_id
            async with served(h) as server:
                status, _ = await _refused(server.ws_url(run_id, f"ticket={first}"))
                assert status == 401  # spent on the other replica
                url = server.ws_url(run_id, f"ticket={second}")
                events, _, _ = await ws_events(url)
                assert events[0]["type"] == "snapshot"
                status, _ = await _refused(url)
                assert status == 401
            with pytest.raises(Unauthorized):
                await other_replica.redeem(second)
