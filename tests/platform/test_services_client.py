"""Calls between services: in process (all-in-one) and over the network (standalone).

Service ``svc-a`` calls ``svc-b`` on behalf of its caller; ``svc-b`` answers with
exactly what it was given. Either way the callee must see the caller's tenant
and key id, only the scopes granted for the call, the outer request id — and
never the caller's API key.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.applications import Starlette

from tests.helpers import auth, issue_key, running
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings
from xynergy.platform.routing import api_router
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

MakeSettings = Callable[..., Settings]

CALLER = "svc-a"
CALLEE = "svc-b"
CALLER_SCOPES = ["content:read", "content:write"]
OUTER_REQUEST_ID = "outer-request-0001"
SERVER_START_BOUND_SECONDS = 10.0
RESPONSE_LIMIT_BYTES = 64 * 1024
OVERSIZED_BODY_BYTES = 4 * RESPONSE_LIMIT_BYTES

ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]


def callee_router() -> APIRouter:
    router = api_router()

    @router.get("/whoami")
    async def whoami(request: Request, caller: ReadAuth) -> dict[str, Any]:
        """Everything this service was told about its caller."""
        return {
            "tenant_id": caller.tenant_id,
            "key_id": caller.key_id,
            "key_tenant_id": caller.key_tenant_id,
            "scopes": sorted(caller.scopes),
            "via": caller.via,
            "request_id": request.headers.get("x-request-id"),
            "headers": dict(request.headers),
        }

    @router.get("/big")
    async def big(_caller: ReadAuth) -> dict[str, str]:
        """A response larger than the caller accepts."""
        return {"padding": "x" * OVERSIZED_BODY_BYTES}

    return router


def caller_router() -> APIRouter:
    router = api_router()

    async def call_callee(
        request: Request, caller: AuthContext, scope: str, path: str = "/whoami"
    ) -> dict[str, Any]:
        services = request.app.state.platform.services
        response = await services.request(CALLEE, "GET", path, caller=caller, scopes={scope})
        return {"status": response.status, "seen": response.json()}

    @router.get("/relay-big")
    async def relay_big(request: Request, caller: ReadAuth) -> dict[str, Any]:
        """Call the callee's oversized endpoint."""
        return await call_callee(request, caller, "content:read", "/big")

    @router.get("/relay")
    async def relay(request: Request, caller: ReadAuth) -> dict[str, Any]:
        """Call the callee with a read scope the caller holds."""
        return await call_callee(request, caller, "content:read")

    @router.get("/relay-beyond-caller")
    async def relay_beyond_caller(request: Request, caller: ReadAuth) -> dict[str, Any]:
        """Call the callee asking for a scope the caller may lack."""
        return await call_callee(request, caller, "keywords:write")

    return router


def callee_app(settings: Settings) -> FastAPI:
    return create_service_app(
        slug=CALLEE, title=CALLEE, settings=settings, routers=[callee_router()]
    )


def caller_app(settings: Settings) -> FastAPI:
    return create_service_app(
        slug=CALLER, title=CALLER, settings=settings, routers=[caller_router()]
    )


@contextmanager
def reserved_port() -> Iterator[socket.socket]:
    """A loopback port that is bound, so no one else takes it, but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock
    finally:
        sock.close()


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yields its base URL."""
    with reserved_port() as sock:
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        async with asyncio.timeout(SERVER_START_BOUND_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    pytest.fail("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


async def relay_as_caller(
    client: httpx.AsyncClient, platform: Platform, path: str = "/relay"
) -> tuple[httpx.Response, str, str, str]:
    """GET ``path`` with a fresh key; (response, tenant id, key id, secret)."""
    tenant_id, issued = await issue_key(platform, tenant="acme", scopes=CALLER_SCOPES)
    response = await client.get(
        path,
        headers={
            "X-Request-ID": OUTER_REQUEST_ID,
            "X-API-Key": issued.secret,
            **auth(issued.secret),
        },
    )
    return response, tenant_id, issued.key.id, issued.secret


def assert_callee_saw_the_caller(
    response: httpx.Response, tenant_id: str, key_id: str, secret: str
) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == OUTER_REQUEST_ID
    relayed = response.json()
    assert relayed["status"] == 200, relayed
    seen = relayed["seen"]
    assert seen["tenant_id"] == tenant_id
    assert seen["key_tenant_id"] == tenant_id
    assert seen["key_id"] == key_id
    assert seen["via"] == "internal"
    assert seen["scopes"] == ["content:read"]
    assert seen["request_id"] == OUTER_REQUEST_ID
    headers = {name.lower(): value for name, value in seen["headers"].items()}
    assert "x-api-key" not in headers
    assert "authorization" not in headers
    assert "x-xynergy-internal-token" in headers
    assert not any(secret in value for value in headers.values())


class TestInProcessCalls:
    @pytest.fixture
    def root(self, make_settings: MakeSettings) -> Starlette:
        return build_all_in_one(make_settings(), services={CALLER: caller_app, CALLEE: callee_app})

    async def test_the_callee_sees_the_caller_not_its_key(self, root: Starlette) -> None:
        async with running(root) as client:
            response, tenant_id, key_id, secret = await relay_as_caller(
                client, root.state.platform, f"/{CALLER}/relay"
            )

        assert_callee_saw_the_caller(response, tenant_id, key_id, secret)

    async def test_asking_for_scopes_the_caller_lacks_is_forbidden(self, root: Starlette) -> None:
        async with running(root) as client:
            response, *_ = await relay_as_caller(
                client, root.state.platform, f"/{CALLER}/relay-beyond-caller"
            )

        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
        assert response.json()["request_id"] == OUTER_REQUEST_ID


class TestNetworkCalls:
    async def test_the_callee_sees_the_caller_not_its_key(
        self, make_settings: MakeSettings
    ) -> None:
        async with serving(callee_app(make_settings())) as callee_url:
            app = caller_app(make_settings(service_urls={CALLEE: callee_url}))
            async with running(app) as client:
                response, tenant_id, key_id, secret = await relay_as_caller(
                    client, app.state.platform
                )

        assert_callee_saw_the_caller(response, tenant_id, key_id, secret)

    async def test_asking_for_scopes_the_caller_lacks_is_forbidden(
        self, make_settings: MakeSettings
    ) -> None:
        async with serving(callee_app(make_settings())) as callee_url:
            app = caller_app(make_settings(service_urls={CALLEE: callee_url}))
            async with running(app) as client:
                response, *_ = await relay_as_caller(
                    client, app.state.platform, "/relay-beyond-caller"
                )

        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"

    async def test_a_callee_that_is_down_is_upstream_unavailable(
        self, make_settings: MakeSettings
    ) -> None:
        with reserved_port() as sock:
            down_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            app = caller_app(make_settings(service_urls={CALLEE: down_url}))
            async with running(app) as client:
                response, *_ = await relay_as_caller(client, app.state.platform)
                healthy = await client.get("/healthz")

        assert response.status_code == 503, response.text
        body = response.json()
        assert body["error"] == "upstream_unavailable"
        assert body["request_id"] == OUTER_REQUEST_ID
        assert healthy.status_code == 200

    async def test_an_oversized_answer_is_refused_not_buffered(
        self, make_settings: MakeSettings
    ) -> None:
        async with serving(callee_app(make_settings())) as callee_url:
            app = caller_app(
                make_settings(
                    service_urls={CALLEE: callee_url}, http_max_response_bytes=RESPONSE_LIMIT_BYTES
                )
            )
            async with running(app) as client:
                response, *_ = await relay_as_caller(client, app.state.platform, "/relay-big")
                within_limit, *_ = await relay_as_caller(client, app.state.platform)

        assert response.status_code == 503, response.text
        assert response.json()["error"] == "upstream_unavailable"
        assert within_limit.status_code == 200
