"""GET /api/status: every service and backend, checked at most once per window."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.live_server import free_port, live_server
from tests.platform.outage_servers import OwnRedis
from tests.platform_dashboard.harness import STATUS, all_in_one, service_of, standalone
from tests.platform_dashboard.sick_services import (
    HUNG,
    UNREADY,
    create_hung_app,
    create_unready_app,
)
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.platform.admin_app import PLATFORM_SLUG
from xynergy.platform.config import Settings
from xynergy.platform_dashboard.app import SLUG
from xynergy.platform_dashboard.config import DashboardSettings
from xynergy.server import SERVICES

ASO = "aso-engine"
CONCURRENT_CALLERS = 100
SHORT_WINDOW = 0.4


class TestWindow:
    async def test_concurrent_calls_within_a_window_compute_once(self, settings: Settings) -> None:
        async with all_in_one(settings, others={ASO: create_aso_engine_app}) as api:
            before = api.computations()
            responses = await asyncio.gather(*(api.get(STATUS) for _ in range(CONCURRENT_CALLERS)))
            assert {response.status_code for response in responses} == {200}
            bodies = [response.json() for response in responses]
            assert api.computations() - before == 1
            assert len({body["computed_at"] for body in bodies}) == 1
            assert all(body["window_seconds"] == 30 for body in bodies)

    async def test_answers_carry_their_age(self, settings: Settings) -> None:
        async with all_in_one(settings, others={ASO: create_aso_engine_app}) as api:
            first = await api.status()
            await asyncio.sleep(0.2)
            second = await api.status()
            assert second["computed_at"] == first["computed_at"]
            assert second["age_seconds"] >= first["age_seconds"] + 0.15
            assert api.computations() == 1

    async def test_window_expiry_recomputes(self, settings: Settings) -> None:
        dashboard = DashboardSettings(status_window_seconds=SHORT_WINDOW)
        async with all_in_one(settings, dashboard, others={ASO: create_aso_engine_app}) as api:
            first = await api.status()
            assert (await api.status())["computed_at"] == first["computed_at"]
            await asyncio.sleep(SHORT_WINDOW + 0.1)
            later = await api.status()
            assert later["computed_at"] > first["computed_at"]
            assert later["age_seconds"] < SHORT_WINDOW
            assert api.computations() == 2


class TestChecks:
    async def test_every_service_and_backend_in_all_in_one_mode(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with all_in_one(make_settings()) as api:
            status = await api.status()
        assert status["status"] == "ok", status
        names = [service["name"] for service in status["services"]]
        assert names == sorted([PLATFORM_SLUG, *SERVICES])
        for service in status["services"]:
            assert service["status"] == "up", service
            assert service["transport"] == "in-process"
            assert service["http_status"] == 200
            assert service["checks"]["database"] == "ok"
        assert status["database"]["status"] == "up"
        assert status["database"]["backend"] == "sqlite"
        assert status["redis"] == {
            "status": "not_configured",
            "backend": None,
            "latency_ms": None,
            "pool": None,
            "error": None,
        }
        assert status["queues"]["status"] == "up"
        assert status["queues"]["source"] == "system-runtime"
        [runs] = status["queues"]["queues"]
        assert runs["name"] == "runs"
        assert runs["queued"] >= 0
        assert status["breakers"]["status"] == "up"
        assert status["breakers"]["source"] == "ai-routing-engine"

    async def test_unready_service_is_down_with_its_error(self, settings: Settings) -> None:
        others = {ASO: create_aso_engine_app, UNREADY: create_unready_app}
        async with all_in_one(settings, others=others) as api:
            status = await api.status()
        unready = service_of(status, UNREADY)
        assert unready["status"] == "down"
        assert unready["http_status"] == 503
        assert unready["error"] == "/readyz answered 503 (database: error: OperationalError)"
        assert service_of(status, ASO)["status"] == "up"
        assert status["status"] == "degraded"

    async def test_hung_service_is_down_without_stalling_the_answer(
        self, settings: Settings
    ) -> None:
        timeout = 0.5
        dashboard = DashboardSettings(status_check_timeout_seconds=timeout)
        others = {ASO: create_aso_engine_app, HUNG: create_hung_app}
        async with all_in_one(settings, dashboard, others=others) as api:
            started = time.monotonic()
            status = await api.status()
            elapsed = time.monotonic() - started
        hung = service_of(status, HUNG)
        assert hung["status"] == "down"
        assert hung["error"] == f"no answer within {timeout:g} s"
        assert hung["http_status"] is None
        assert service_of(status, ASO)["status"] == "up"
        assert service_of(status, SLUG)["status"] == "up"
        assert elapsed < timeout + 1.0

    async def test_standalone_service_on_a_closed_port_is_down(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        closed = f"http://127.0.0.1:{free_port()}"
        async with standalone(make_settings(service_urls={ASO: closed})) as api:
            status = await api.status()
        aso = service_of(status, ASO)
        assert aso["status"] == "down"
        assert aso["transport"] == "network"
        assert aso["error"].startswith("UpstreamUnavailable: ")
        assert "ClientConnectorError" in aso["error"]
        assert service_of(status, SLUG) | {"latency_ms": 0} == {
            "name": SLUG,
            "status": "up",
            "transport": "in-process",
            "http_status": 200,
            "checks": {"database": "ok"},
            "latency_ms": 0,
            "error": None,
        }
        # Neither the queues' nor the breakers' service is deployed beside it.
        assert status["queues"]["status"] == "not_deployed"
        assert status["breakers"]["status"] == "not_deployed"

    async def test_standalone_service_going_down_shows_within_one_window(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        port = free_port()
        settings = make_settings(service_urls={ASO: f"http://127.0.0.1:{port}"})
        dashboard = DashboardSettings(status_window_seconds=SHORT_WINDOW)
        async with standalone(settings, dashboard) as api:
            with live_server(data_dir=tmp_path / "aso", port=port, serve_args=("--service", ASO)):
                up = service_of(await api.status(), ASO)
            await asyncio.sleep(SHORT_WINDOW + 0.1)
            down = service_of(await api.status(), ASO)
        assert up["status"] == "up", up
        assert up["transport"] == "network"
        assert down["status"] == "down"
        assert "UpstreamUnavailable" in down["error"]


class TestRedis:
    async def test_configured_redis_is_up(
        self, make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        async with all_in_one(settings, others={}) as api:
            redis = (await api.status())["redis"]
        assert redis["status"] == "up"
        assert redis["backend"] == "redis"
        assert redis["latency_ms"] >= 0

    async def test_redis_going_down_shows_within_one_window(
        self, make_settings: Callable[..., Settings], redis_prefix: str
    ) -> None:
        server = OwnRedis()
        server.start()
        try:
            settings = make_settings(redis_url=server.url, redis_key_prefix=redis_prefix)
            dashboard = DashboardSettings(
                status_window_seconds=SHORT_WINDOW, status_check_timeout_seconds=0.5
            )
            async with all_in_one(settings, dashboard, others={}) as api:
                up = await api.status()
                server.kill()
                await asyncio.sleep(SHORT_WINDOW + 0.1)
                down = await api.status()
        finally:
            server.kill()
        assert up["redis"]["status"] == "up"
        assert down["redis"]["status"] == "down"
        assert down["redis"]["error"]
        assert down["status"] == "degraded"


class TestPermissions:
    async def test_without_a_key_401(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            response = await api.get(STATUS, headers={})
        assert response.status_code == 401
        assert set(response.json()) == {"error", "detail", "request_id"}

    async def test_key_without_metrics_read_403(self, settings: Settings) -> None:
        async with all_in_one(settings, others={}) as api:
            response = await api.get(STATUS, headers=api.no_metrics)
        assert response.status_code == 403
        assert "metrics:read" in response.json()["detail"]

    @pytest.mark.parametrize("who", ["operator", "reader"])
    async def test_operator_and_tenant_reader_see_the_same_status(
        self, settings: Settings, who: str
    ) -> None:
        async with all_in_one(settings, others={}) as api:
            response = await api.get(STATUS, headers=getattr(api, who))
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        assert [service["name"] for service in response.json()["services"]] == [
            PLATFORM_SLUG,
            SLUG,
        ]
