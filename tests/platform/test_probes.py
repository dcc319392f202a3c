"""Probes: readiness from a shared, recent check; metrics behind a scope and a limit.

In process (ASGI transport), on SQLite; the hostile-client versions, against a
real server process, are in ``test_probe_floods.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from tests.helpers import auth, issue_key, metric_value, running
from tests.live_server import free_port
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.metrics_port import LOOPBACK
from xynergy.platform.readiness import ReadinessProbe
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

MakeSettings = Callable[..., Settings]
CHECKS = "xynergy_readiness_checks_total"
CONCURRENT_CALLERS = 50
LONG_WINDOW = 60.0  # no test lasts this long: within it, nothing is checked again
SHORT_WINDOW = 0.05
WAIT_BOUND = 5.0  # seconds an event-based wait may take before the test fails


@contextmanager
def counting_backend_checks(platform: Platform) -> Iterator[list[str]]:
    """Every ``SELECT 1`` the platform's engine runs while the block is open."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if statement.strip().upper() == "SELECT 1":
            seen.append(statement)

    target = platform.engine.sync_engine
    event.listen(target, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", record)


@asynccontextmanager
async def platform_app(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    app: Starlette = build_all_in_one(settings)
    async with running(app) as client:
        yield client, app.state.platform


class TestReadyz:
    async def test_concurrent_callers_share_one_database_check(
        self, make_settings: MakeSettings
    ) -> None:
        async with platform_app(make_settings(readiness_cache_seconds=LONG_WINDOW)) as (
            client,
            platform,
        ):
            with counting_backend_checks(platform) as checks:
                answers = await asyncio.gather(
                    *(client.get("/readyz") for _ in range(CONCURRENT_CALLERS))
                )
        assert [a.status_code for a in answers] == [200] * CONCURRENT_CALLERS
        assert len(checks) == 1
        assert metric_value(platform.metrics.render().decode(), CHECKS) == 1

    async def test_a_call_within_the_window_answers_from_the_last_check(
        self, make_settings: MakeSettings
    ) -> None:
        async with platform_app(make_settings(readiness_cache_seconds=LONG_WINDOW)) as (
            client,
            platform,
        ):
            with counting_backend_checks(platform) as checks:
                first = await client.get("/readyz")
                await asyncio.sleep(SHORT_WINDOW)
                # Another mount, same platform: the same cached answer.
                second = await client.get("/aso-engine/readyz")
        assert len(checks) == 1
        assert first.json()["checks"] == second.json()["checks"] == {"database": "ok"}
        assert second.json()["age_seconds"] >= SHORT_WINDOW
        assert second.headers["cache-control"] == "no-store"

    async def test_a_call_after_the_window_checks_again(self, make_settings: MakeSettings) -> None:
        async with platform_app(make_settings(readiness_cache_seconds=SHORT_WINDOW)) as (
            client,
            platform,
        ):
            with counting_backend_checks(platform) as checks:
                await client.get("/readyz")
                await asyncio.sleep(SHORT_WINDOW * 2)
                again = await client.get("/readyz")
        assert len(checks) == 2
        assert again.json()["age_seconds"] < SHORT_WINDOW * 2

    async def test_a_failed_check_is_cached_too(self, make_settings: MakeSettings) -> None:
        settings = make_settings(
            readiness_cache_seconds=LONG_WINDOW,
            redis_url="redis://127.0.0.1:1/0",
            redis_socket_timeout_seconds=0.5,
            redis_reconnect_backoff_seconds=0.2,
        )
        async with platform_app(settings) as (client, platform):
            answers = [await client.get("/readyz") for _ in range(3)]
        assert [a.status_code for a in answers] == [503] * 3
        assert answers[-1].json()["checks"]["redis"].startswith("error")
        assert metric_value(platform.metrics.render().decode(), CHECKS) == 1

    async def test_healthz_touches_no_backend(self, make_settings: MakeSettings) -> None:
        async with platform_app(make_settings()) as (client, platform):
            with counting_backend_checks(platform) as checks:
                answers = [await client.get("/healthz") for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        assert checks == []


class TestReadinessProbe:
    async def test_callers_arriving_during_a_check_wait_for_it(self) -> None:
        started, release = asyncio.Event(), asyncio.Event()
        calls = 0

        async def check() -> dict[str, str]:
            nonlocal calls
            calls += 1
            started.set()
            await release.wait()
            return {"database": "ok"}

        probe = ReadinessProbe(check, max_age=0)
        callers = [asyncio.create_task(probe.current()) for _ in range(CONCURRENT_CALLERS)]
        await asyncio.wait_for(started.wait(), WAIT_BOUND)
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*callers), WAIT_BOUND)
        assert calls == 1
        assert len({id(result) for result in results}) == 1
        assert results[0].ready

    async def test_a_caller_that_goes_away_does_not_cancel_the_shared_check(self) -> None:
        started, release = asyncio.Event(), asyncio.Event()

        async def check() -> dict[str, str]:
            started.set()
            await release.wait()
            return {"database": "ok"}

        probe = ReadinessProbe(check, max_age=LONG_WINDOW)
        leaving = asyncio.create_task(probe.current())
        staying = asyncio.create_task(probe.current())
        await asyncio.wait_for(started.wait(), WAIT_BOUND)
        leaving.cancel()
        release.set()
        result = await asyncio.wait_for(staying, WAIT_BOUND)
        assert result.ready
        assert leaving.cancelled()


class TestMetricsEndpoint:
    async def test_anonymous_is_401(self, make_settings: MakeSettings) -> None:
        async with platform_app(make_settings()) as (client, _):
            for path in ("/metrics", "/aso-engine/metrics"):
                response = await client.get(path)
                assert response.status_code == 401, path
                assert "xynergy_" not in response.text

    async def test_a_key_without_metrics_read_is_403(self, make_settings: MakeSettings) -> None:
        async with platform_app(make_settings()) as (client, platform):
            _, key = await issue_key(platform, scopes=["content:read"])
            response = await client.get("/metrics", headers=auth(key.secret))
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert "metrics:read" in response.json()["detail"]

    async def test_a_key_with_metrics_read_gets_the_exposition(
        self, make_settings: MakeSettings
    ) -> None:
        async with platform_app(make_settings()) as (client, platform):
            _, key = await issue_key(platform, scopes=["metrics:read"])
            response = await client.get("/metrics", headers=auth(key.secret))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        assert "xynergy_http_requests_total" in response.text

    async def test_past_the_metrics_limit_is_429_with_retry_after(
        self, make_settings: MakeSettings
    ) -> None:
        limits = {**DEFAULT_RATE_LIMITS, "metrics": "2/minute"}
        async with platform_app(make_settings(rate_limits=limits)) as (client, platform):
            _, key = await issue_key(platform, scopes=["metrics:read"])
            answers = [await client.get("/metrics", headers=auth(key.secret)) for _ in range(3)]
            # The limit is per key: another scraper is not affected.
            _, other = await issue_key(platform, tenant="ops", scopes=["metrics:read"])
            elsewhere = await client.get("/metrics", headers=auth(other.secret))
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[-1].json()["error"] == "rate_limited"
        assert int(answers[-1].headers["retry-after"]) >= 1
        assert elsewhere.status_code == 200


async def _raw_get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), WAIT_BOUND)
    finally:
        writer.close()


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), WAIT_BOUND) == b""


class TestMetricsPort:
    async def test_serves_metrics_without_a_key_on_loopback_only(
        self, make_settings: MakeSettings
    ) -> None:
        port = free_port()
        async with platform_app(make_settings(metrics_port=port)) as (client, platform):
            await client.get("/healthz")
            listener = platform.metrics_listener
            assert listener is not None
            answer = await _raw_get(port, "/metrics")
            elsewhere = await _raw_get(port, "/admin/tenants")
            addresses = listener.addresses
        assert answer.startswith(b"HTTP/1.1 200")
        assert b"xynergy_http_requests_total" in answer
        assert elsewhere.startswith(b"HTTP/1.1 404")
        assert addresses == [(LOOPBACK, port)]
        # Stopped with the platform.
        with pytest.raises(ConnectionRefusedError):
            await _raw_get(port, "/metrics")

    async def test_is_off_by_default(self, make_settings: MakeSettings) -> None:
        async with platform_app(make_settings()) as (_, platform):
            assert platform.metrics_listener is None

    async def test_connections_are_capped_and_timed_out(self, make_settings: MakeSettings) -> None:
        port = free_port()
        settings = make_settings(
            metrics_port=port, metrics_port_max_connections=2, metrics_port_timeout_seconds=0.5
        )
        async with platform_app(settings):
            idle = [await asyncio.open_connection(LOOPBACK, port) for _ in range(2)]
            await asyncio.sleep(SHORT_WINDOW)  # both accepted before the third arrives
            extra_reader, extra_writer = await asyncio.open_connection(LOOPBACK, port)
            refused_at_once = await _closed_by_server(extra_reader)
            idle_closed = [await _closed_by_server(reader) for reader, _ in idle]
            after = await _raw_get(port, "/metrics")
            for _, writer in [*idle, (extra_reader, extra_writer)]:
                writer.close()
        assert refused_at_once
        assert idle_closed == [True, True]
        assert after.startswith(b"HTTP/1.1 200")
