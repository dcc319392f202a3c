"""Redis down: breakers and caches degrade to local state, budgets answer 503, never a 500.

Each test runs its own ``redis-server`` (never the shared one), kills it by PID
mid-test and starts it again on the same port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import Gateway, gateway, http_model, write_catalogue
from tests.helpers import auth, issue_key, metric_value, running, scrape
from tests.platform.outage_servers import OwnRedis
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.breaker import Breakers
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.runtime import Platform, create_redis

pytestmark = pytest.mark.asyncio

THRESHOLD = 3
RESET_SECONDS = 0.3
RETRY_AFTER_SECONDS = 9
# Short, so a test sees Redis tried again (and its recovery) quickly.
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_BACKOFF_SECONDS = 0.1
RECOVERY_DEADLINE_SECONDS = 5.0
DEGRADED_METRIC = "xynergy_circuit_breaker_state_store_errors_total"
DESTINATION = "acme|https://hooks.example:443"


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = OwnRedis()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def settings(make_settings: Callable[..., Settings], own_redis: OwnRedis) -> Settings:
    return make_settings(
        redis_url=own_redis.url,
        redis_socket_timeout_seconds=REDIS_TIMEOUT_SECONDS,
        redis_reconnect_backoff_seconds=REDIS_BACKOFF_SECONDS,
        redis_unavailable_retry_after_seconds=RETRY_AFTER_SECONDS,
        breaker_failure_threshold=THRESHOLD,
        breaker_reset_seconds=RESET_SECONDS,
    )


def single_model(tmp_path: Path, upstream: FakeOpenAI) -> AiSettings:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "alpha")],
    )
    return AiSettings(catalogue=catalogue)


async def chat(gw: Gateway, content: str) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": 20}
    return await gw.client.post("/v1/chat/completions", json=body, headers=gw.headers)


async def eventually_ok(call: Callable[[], object]) -> httpx.Response:
    """The first 200 ``call`` answers within the recovery deadline (Redis just restarted)."""
    deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
    while True:
        response = await call()  # type: ignore[misc]
        assert isinstance(response, httpx.Response)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(REDIS_BACKOFF_SECONDS)


async def fail_through(breakers: Breakers, upstream: str, destination: str | None = None) -> None:
    with pytest.raises(RuntimeError):
        async with breakers.guard(upstream, destination):
            raise RuntimeError("the upstream is unwell")


class TestGuardedCallsDuringOutage:
    async def test_ai_chat_succeeds_while_redis_is_down_and_after(
        self, settings: Settings, own_redis: OwnRedis, tmp_path: Path
    ) -> None:
        async with (
            FakeOpenAI() as upstream,
            gateway(settings, single_model(tmp_path, upstream)) as gw,
        ):
            before = await chat(gw, "before")
            own_redis.kill()
            with capture_logs() as logs:
                during = [await chat(gw, f"during {i}") for i in range(3)]
            degraded = metric_value(scrape(gw.platform), DEGRADED_METRIC)
            own_redis.start()
            after = await eventually_ok(lambda: chat(gw, "after"))
            # The first command may still meet a pooled connection the restart
            # closed; within a few calls the breaker is back on shared state.
            deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
            while not (shared_keys := own_redis.keys(settings.redis_key_prefix + "cbr:*")):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(REDIS_BACKOFF_SECONDS)
                assert (await chat(gw, "after again")).status_code == 200

        assert before.status_code == 200, before.text
        assert [response.status_code for response in during] == [200, 200, 200], during[0].text
        assert degraded > 0
        events = [entry["event"] for entry in logs]
        assert events.count("breaker.state_store_unavailable") == 1
        assert after.status_code == 200, after.text
        # Back on shared state: the breaker registered itself in the new Redis.
        assert shared_keys


class TestBreakerOnLocalState:
    @pytest.fixture
    async def breakers(self, settings: Settings) -> AsyncIterator[tuple[Breakers, PlatformMetrics]]:
        metrics = PlatformMetrics()
        redis = create_redis(settings)
        assert redis is not None
        yield Breakers(settings, metrics, redis), metrics
        await redis.aclose()

    @pytest.mark.parametrize("destination", [None, DESTINATION], ids=["upstream", "destination"])
    async def test_opens_fails_fast_and_recovers_without_redis(
        self,
        breakers: tuple[Breakers, PlatformMetrics],
        own_redis: OwnRedis,
        destination: str | None,
    ) -> None:
        guarded, metrics = breakers
        own_redis.kill()
        with capture_logs() as logs:
            for _ in range(THRESHOLD):
                await fail_through(guarded, "upstream", destination)
            calls = 0
            with pytest.raises(CircuitOpen):
                async with guarded.guard("upstream", destination):
                    calls += 1
            opened = await guarded.state("upstream", destination)
            await asyncio.sleep(RESET_SECONDS * 1.5)
            async with guarded.guard("upstream", destination):
                calls += 1  # the probe, let through after the reset time
            closed = await guarded.state("upstream", destination)

        assert (opened, closed, calls) == ("opened", "closed", 1)
        events = [entry["event"] for entry in logs]
        assert events.count("breaker.state_store_unavailable") == 1
        assert metric_value(metrics.render().decode(), DEGRADED_METRIC) >= THRESHOLD

    async def test_returns_to_shared_state_when_redis_is_back(
        self, breakers: tuple[Breakers, PlatformMetrics], own_redis: OwnRedis, settings: Settings
    ) -> None:
        guarded, _ = breakers
        own_redis.kill()
        for _ in range(THRESHOLD):
            await fail_through(guarded, "upstream")
        assert await guarded.state("upstream") == "opened"
        own_redis.start()
        await asyncio.sleep(REDIS_BACKOFF_SECONDS * 2)

        with capture_logs() as logs:
            # The restarted Redis holds no state: the shared breaker is closed.
            state = await guarded.state("upstream")
            async with guarded.guard("upstream"):
                pass

        assert state == "closed"
        assert [e["event"] for e in logs].count("breaker.state_store_recovered") == 1
        assert own_redis.keys(settings.redis_key_prefix + "cbr:upstream*")

    async def test_failure_counted_when_redis_dies_inside_the_call(
        self, breakers: tuple[Breakers, PlatformMetrics], own_redis: OwnRedis
    ) -> None:
        guarded, _ = breakers
        # State read from Redis, then Redis dies before the failure is written:
        # the caller sees its own error, never the store's.
        with pytest.raises(RuntimeError, match="unwell"):  # noqa: PT012 - the kill is the point
            async with guarded.guard("upstream"):
                own_redis.kill()
                raise RuntimeError("the upstream is unwell")
        for _ in range(THRESHOLD - 1):
            await fail_through(guarded, "upstream")
        assert await guarded.state("upstream") == "opened"


class TestBudgetDuringOutage:
    async def test_reservation_answers_503_redis_unavailable_then_recovers(
        self, settings: Settings, own_redis: OwnRedis, tmp_path: Path
    ) -> None:
        async with (
            FakeOpenAI() as upstream,
            gateway(settings, single_model(tmp_path, upstream)) as gw,
        ):
            budget = {"period": "month", "limit_usd": "25.00"}
            created = await gw.client.put("/api/budgets", json=budget, headers=gw.headers)
            assert created.status_code == 200, created.text
            calls_before = upstream.calls
            own_redis.kill()
            refused = await chat(gw, "while down")
            listed = await gw.client.get("/api/budgets", headers=gw.headers)
            upstream_calls = upstream.calls - calls_before
            own_redis.start()
            after = await eventually_ok(lambda: chat(gw, "after"))
            listed_after = await gw.client.get("/api/budgets", headers=gw.headers)

        # Under /v1 errors take OpenAI's shape; the code says which backend failed.
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "redis_unavailable"
        assert refused.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert upstream_calls == 0  # not run unbudgeted
        # Elsewhere the platform shape; a Redis read that cannot degrade is a 503 too.
        assert listed.status_code == 503, listed.text
        assert listed.json()["error"] == "redis_unavailable"
        assert set(listed.json()) == {"error", "detail", "request_id"}
        assert listed.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert after.status_code == 200, after.text
        assert listed_after.status_code == 200, listed_after.text


class TestCacheDuringOutage:
    async def test_reads_miss_and_a_write_is_not_hidden_by_a_local_copy(
        self, settings: Settings, own_redis: OwnRedis
    ) -> None:
        platform = await Platform.open(settings)
        try:
            cache = platform.cache
            tag = cache.tag("things", "acme")
            value = {"version": 1}

            async def compute() -> dict[str, int]:
                return dict(value)

            await cache.get_or_compute("things", "acme", ["all"], compute, tags=[tag])
            # Read back from Redis: now also in this process's local copies.
            cached = await cache.get_or_compute("things", "acme", ["all"], compute, tags=[tag])
            own_redis.kill()
            value["version"] = 2
            await cache.invalidate(tag)  # Redis errors are suppressed: no raise
            deadline = time.monotonic() + RECOVERY_DEADLINE_SECONDS
            while True:
                seen = await cache.get_or_compute("things", "acme", ["all"], compute, tags=[tag])
                if seen == value or time.monotonic() > deadline:
                    break
                await asyncio.sleep(REDIS_BACKOFF_SECONDS)
            own_redis.start()
        finally:
            await platform.close()

        assert cached == {"version": 1}
        assert seen == {"version": 2}


class TestKeyRevocationDuringOutage:
    async def test_revoking_answers_200_and_the_key_stops_working(
        self, settings: Settings, own_redis: OwnRedis
    ) -> None:
        app = create_admin_app(settings)
        async with running(app) as client:
            platform: Platform = app.state.platform
            _, manager = await issue_key(platform, tenant="acme", scopes=["keys:admin"])
            _, target = await issue_key(platform, tenant="acme", scopes=["keys:admin"])
            assert (await client.get("/admin/keys", headers=auth(target.secret))).status_code == 200
            own_redis.kill()
            revoked = await client.post(
                f"/admin/keys/{target.key.id}/revoke", headers=auth(manager.secret)
            )
            refused = await client.get("/admin/keys", headers=auth(target.secret))
            own_redis.start()

        assert revoked.status_code == 200, revoked.text
        assert refused.status_code == 401
