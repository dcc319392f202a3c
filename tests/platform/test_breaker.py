"""Circuit breakers on inter-service calls: fail fast, count only upstream faults, recover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.applications import Starlette

from tests.helpers import auth, issue_key, metric_value, running
from tests.platform.test_services_client import reserved_port
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import NotFound
from xynergy.platform.routing import api_router
from xynergy.server import build_all_in_one

ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]
THRESHOLD = 3
RESET_SECONDS = 0.5


def callee(settings: Settings) -> FastAPI:
    router = api_router()

    @router.get("/broken")
    async def broken(request: Request, _auth: ReadAuth) -> dict[str, str]:
        request.app.state.calls += 1
        if request.app.state.healthy:
            return {"ok": "yes"}
        raise RuntimeError("the callee is unwell")

    @router.get("/missing")
    async def missing(request: Request, _auth: ReadAuth) -> dict[str, str]:
        request.app.state.calls += 1
        raise NotFound("nothing here")

    app = create_service_app(slug="callee", title="callee", settings=settings, routers=[router])
    app.state.calls = 0
    app.state.healthy = False
    return app


def caller(settings: Settings) -> FastAPI:
    router: APIRouter = api_router()

    @router.get("/relay/{target}")
    async def relay(target: str, request: Request, auth_: ReadAuth) -> dict[str, Any]:
        response = await request.app.state.platform.services.request(
            "callee", "GET", "/" + target, caller=auth_, scopes={"content:read"}
        )
        return {"status": response.status}

    return create_service_app(slug="caller", title="caller", settings=settings, routers=[router])


def breaker_settings(make_settings: Callable[..., Settings], **extra: Any) -> Settings:
    return make_settings(
        breaker_failure_threshold=THRESHOLD, breaker_reset_seconds=RESET_SECONDS, **extra
    )


class TestInProcessBreaker:
    async def test_server_errors_open_it_and_it_recovers_after_the_cool_down(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        apps: dict[str, FastAPI] = {}

        def make_callee(settings: Settings) -> FastAPI:
            apps["callee"] = callee(settings)
            return apps["callee"]

        root: Starlette = build_all_in_one(
            breaker_settings(make_settings), services={"callee": make_callee, "caller": caller}
        )
        async with running(root) as client:
            _, key = await issue_key(root.state.platform, scopes=["content:read"])
            relayed = [
                (await client.get("/caller/relay/broken", headers=auth(key.secret))).json()
                for _ in range(THRESHOLD)
            ]
            assert relayed == [{"status": 500}] * THRESHOLD
            calls_when_opened = apps["callee"].state.calls

            fast_fail = await client.get("/caller/relay/broken", headers=auth(key.secret))
            assert fast_fail.status_code == 503
            assert fast_fail.json()["error"] == "circuit_open"
            assert apps["callee"].state.calls == calls_when_opened  # not called at all
            metrics = (await client.get("/metrics")).text
            assert (
                metric_value(metrics, "xynergy_circuit_breaker_state", circuit="service:callee")
                == 1
            )

            apps["callee"].state.healthy = True
            await asyncio.sleep(RESET_SECONDS + 0.1)
            probe = await client.get("/caller/relay/broken", headers=auth(key.secret))
            assert probe.json() == {"status": 200}
            metrics = (await client.get("/metrics")).text
            assert (
                metric_value(metrics, "xynergy_circuit_breaker_state", circuit="service:callee")
                == 0
            )

    async def test_client_errors_do_not_count(self, make_settings: Callable[..., Settings]) -> None:
        root = build_all_in_one(
            breaker_settings(make_settings), services={"callee": callee, "caller": caller}
        )
        async with running(root) as client:
            _, key = await issue_key(root.state.platform, scopes=["content:read"])
            statuses = [
                (await client.get("/caller/relay/missing", headers=auth(key.secret))).json()
                for _ in range(THRESHOLD * 2)
            ]
        assert statuses == [{"status": 404}] * (THRESHOLD * 2)


class TestNetworkBreaker:
    async def test_an_unreachable_service_trips_it(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        with reserved_port() as sock:
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            app = caller(breaker_settings(make_settings, service_urls={"callee": url}))
            async with running(app) as client:
                _, key = await issue_key(app.state.platform, scopes=["content:read"])
                errors = [
                    (await client.get("/relay/broken", headers=auth(key.secret))).json()["error"]
                    for _ in range(THRESHOLD + 2)
                ]
        assert errors == ["upstream_unavailable"] * THRESHOLD + ["circuit_open"] * 2
