"""Every pool and client opened in lifespan is closed on shutdown, once.

Resources are observed from outside where possible: Redis connections through
the server's own client list and pub/sub counts, database connections through
the pool's counters, outbound sessions and background tasks through their
public state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.pool import Pool
from starlette.applications import Starlette
from starlette.routing import Mount
from structlog.testing import capture_logs

from tests.helpers import running
from xynergy.platform.app import Hook, create_service_app
from xynergy.platform.auth.verifier import invalidation_channel
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

MakeSettings = Callable[..., Settings]

BACKGROUND_TASKS = frozenset(
    {"keys-last-used", "keys-invalidation", "log-flusher", "cache-tracking"}
)
DISCONNECT_BOUND_SECONDS = 2.0


@dataclass
class Observed:
    """What a run opened, captured while it was running."""

    platform: Platform
    sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    background: list[asyncio.Task[object]] = field(default_factory=list)
    pool: Pool | None = None
    redis_client_ids: set[int] = field(default_factory=set)


async def observe(platform: Platform) -> Observed:
    """Use every resource once so there is something open to close."""
    observed = Observed(platform)
    platform.http.session("x")
    platform.http.session("y")
    observed.sessions = platform.http.open_sessions
    observed.background = [
        task for task in asyncio.all_tasks() if task.get_name() in BACKGROUND_TASKS
    ]
    async with platform.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    observed.pool = platform.engine.pool
    if platform.redis is not None:
        redis = platform.redis
        ids = await asyncio.gather(*(redis.client_id() for _ in range(3)))
        observed.redis_client_ids = set(ids)
    # Open now, so that "closed afterwards" means something.
    assert not any(session.closed for session in observed.sessions)
    assert not any(task.done() for task in observed.background)
    assert observed.pool.checkedin() >= 1
    return observed


@asynccontextmanager
async def redis_probe(url: str) -> AsyncIterator[Redis]:
    probe = Redis.from_url(url)
    try:
        yield probe
    finally:
        await probe.aclose()


async def subscribers(probe: Redis, channel: str) -> int:
    counts = dict(await probe.pubsub_numsub(channel))
    return int(counts.get(channel.encode(), 0))


async def live_client_ids(probe: Redis, ids: set[int]) -> set[int]:
    """Which of ``ids`` the Redis server still has connected."""
    clients = await probe.client_list(client_id=sorted(ids)) if ids else []
    return {int(client["id"]) for client in clients}


async def until_gone(probe: Redis, ids: set[int]) -> set[int]:
    """Waits (bounded) for the server to notice closed connections; the survivors."""
    deadline = asyncio.get_running_loop().time() + DISCONNECT_BOUND_SECONDS
    while (alive := await live_client_ids(probe, ids)) and (
        asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(0.02)
    return alive


def assert_released(observed: Observed) -> None:
    platform = observed.platform
    assert platform.closed
    assert platform.http.closed
    assert observed.sessions
    assert all(session.closed for session in observed.sessions)
    assert platform.services.closed
    assert observed.background
    assert all(task.done() for task in observed.background)
    assert observed.pool is not None
    assert observed.pool.checkedout() == 0
    assert observed.pool.checkedin() == 0


def mounted_apps(root: Starlette) -> list[FastAPI]:
    apps = []
    for route in root.routes:
        assert isinstance(route, Mount)
        assert isinstance(route.app, FastAPI)
        apps.append(route.app)
    return apps


def recording_hooks(log: list[tuple[str, bool]], name: str) -> tuple[Hook, Hook]:
    """Startup and shutdown hooks noting whether the platform was closed then."""

    async def on_startup(platform: Platform) -> None:
        log.append((name + ":startup", platform.closed))

    async def on_shutdown(platform: Platform) -> None:
        log.append((name + ":shutdown", platform.closed))

    return on_startup, on_shutdown


class TestStandaloneLifespan:
    async def test_shutdown_releases_every_resource(
        self, make_settings: MakeSettings, redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        hooks: list[tuple[str, bool]] = []
        startup, shutdown = recording_hooks(hooks, "svc")
        app = create_service_app(
            slug="svc", title="svc", settings=settings, on_startup=[startup], on_shutdown=[shutdown]
        )
        channel = invalidation_channel(settings)

        async with redis_probe(redis_url) as probe:
            async with running(app) as client:
                assert (await client.get("/readyz")).status_code == 200
                observed = await observe(app.state.platform)
                assert len(observed.background) == len(BACKGROUND_TASKS)
                assert await subscribers(probe, channel) == 1
                assert await live_client_ids(probe, observed.redis_client_ids)

            assert_released(observed)
            assert await until_gone(probe, observed.redis_client_ids) == set()
            assert await subscribers(probe, channel) == 0
        assert hooks == [("svc:startup", False), ("svc:shutdown", False)]

    async def test_shutdown_without_redis_releases_every_resource(
        self, make_settings: MakeSettings
    ) -> None:
        app = create_service_app(slug="svc", title="svc", settings=make_settings())

        async with running(app):
            observed = await observe(app.state.platform)

        assert_released(observed)

    async def test_a_failing_startup_hook_fails_startup_and_closes_the_platform(
        self, make_settings: MakeSettings
    ) -> None:
        opened: list[Observed] = []

        async def broken(platform: Platform) -> None:
            opened.append(await observe(platform))
            raise RuntimeError("startup hook failed")

        app = create_service_app(
            slug="svc", title="svc", settings=make_settings(), on_startup=[broken]
        )

        with pytest.raises(RuntimeError, match="startup hook failed"):
            async with app.router.lifespan_context(app):
                pytest.fail("startup should not have completed")

        assert len(opened) == 1
        assert_released(opened[0])


class TestAllInOneLifespan:
    async def test_one_shared_platform_is_opened_and_closed_once(
        self, make_settings: MakeSettings, redis_url: str, redis_prefix: str
    ) -> None:
        settings = make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix)
        hooks: list[tuple[str, bool]] = []

        def factory(name: str) -> Callable[[Settings], FastAPI]:
            startup, shutdown = recording_hooks(hooks, name)
            return lambda s: create_service_app(
                slug=name, title=name, settings=s, on_startup=[startup], on_shutdown=[shutdown]
            )

        root = build_all_in_one(settings, services={"svc-a": factory("a"), "svc-b": factory("b")})

        with capture_logs() as logs:
            async with redis_probe(redis_url) as probe:
                async with running(root) as client:
                    platform = root.state.platform
                    apps = mounted_apps(root)
                    assert [app.state.platform for app in apps] == [platform] * len(apps)
                    for path in ("/svc-a/readyz", "/svc-b/readyz", "/readyz"):
                        assert (await client.get(path)).status_code == 200, path
                    observed = await observe(platform)
                    assert len(observed.background) == len(BACKGROUND_TASKS)
                    assert await live_client_ids(probe, observed.redis_client_ids)

                assert_released(observed)
                assert await until_gone(probe, observed.redis_client_ids) == set()
                assert await subscribers(probe, invalidation_channel(settings)) == 0

        assert len(apps) == 3
        assert all(app.state.platform is platform for app in apps)
        events = [entry["event"] for entry in logs]
        assert events.count("platform.opened") == 1
        assert events.count("platform.closed") == 1
        assert sorted(hooks) == [
            ("a:shutdown", False),
            ("a:startup", False),
            ("b:shutdown", False),
            ("b:startup", False),
        ]

    async def test_a_failing_startup_hook_fails_startup_and_closes_the_platform(
        self, make_settings: MakeSettings
    ) -> None:
        opened: list[Observed] = []

        async def broken(platform: Platform) -> None:
            opened.append(await observe(platform))
            raise RuntimeError("startup hook failed")

        root = build_all_in_one(
            make_settings(),
            services={
                "svc": lambda s: create_service_app(
                    slug="svc", title="svc", settings=s, on_startup=[broken]
                )
            },
        )

        with pytest.raises(RuntimeError, match="startup hook failed"):
            async with root.router.lifespan_context(root):
                pytest.fail("startup should not have completed")

        assert len(opened) == 1
        assert opened[0].platform is root.state.platform
        assert_released(opened[0])
