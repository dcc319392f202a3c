"""Hostile anonymous clients flooding the probes of a real server process.

One ``xynergy serve`` per database (SQLite; PostgreSQL + Redis) on a loopback
port, shared by the tests of this module. Each flood lasts ``FLOOD_SECONDS``:
anonymous clients (300 on ``/readyz``, 16 on ``/metrics``, as in the audit) loop
on a probe from 127.0.0.1 and 127.0.0.3 while one tenant, from 127.0.0.2, lists
its content with a ``content:read`` key. Every request has a timeout, every loop a deadline, and
the server is stopped by its PID.

The tenant's median latency is printed (``-s`` shows it); the assertions do not
depend on machine speed: the tenant is always served, the flood never reaches
the database more than once per readiness window, and anonymous metrics
scrapers are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import redis as redis_sync

from tests.conftest import REDIS_URL, _empty_tables
from tests.helpers import metric_value
from tests.live_server import LOOPBACK, LiveServer, free_port, live_server
from xynergy.platform.config import DEFAULT_RATE_LIMITS

FLOOD_SECONDS = 3.0
# The audit's floods were 300 clients on /readyz and 16 on /metrics.
READYZ_FLOODERS = 300
METRICS_FLOODERS = 16
BASELINE_REQUESTS = 20
REQUEST_TIMEOUT_SECONDS = 10.0
# Readiness window of the server under test, and the extra checks allowed for
# the first one and for a window straddling each end of the flood.
READINESS_WINDOW_SECONDS = 1.0
CHECK_SLACK = 3
# Flooders are spread over these source addresses, so no one address goes past
# the server's per-address connection cap.
ATTACKERS = ("127.0.0.1", "127.0.0.3")
TENANT_ADDRESS = "127.0.0.2"  # another client, as the per-address limits see it
CONTENT = "/aso-engine/api/content"
CHECKS = "xynergy_readiness_checks_total"
# Generous limits for the tenant's loop: this is about load, not the limiter.
RATE_LIMITS = json.dumps({**DEFAULT_RATE_LIMITS, "reads": "1000000/hour", "metrics": "600/minute"})


@dataclass
class Flooded:
    """What a server under a flood looked like: every status and latency seen."""

    flood_statuses: list[int] = field(default_factory=list)
    flood_latencies: list[float] = field(default_factory=list)
    tenant_statuses: list[int] = field(default_factory=list)
    tenant_latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    server_cpu_seconds: float = 0.0


@dataclass
class Target:
    server: LiveServer
    tenant_key: str
    metrics_key: str
    metrics_port: int
    label: str

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def _session(local_address: str, connections: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=connections, local_addr=(local_address, 0), force_close=False
    )
    return aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
    )


async def _timed_get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        async with session.get(url, headers=headers) as response:
            await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0  # refused, reset or timed out: recorded, never retried
    return status, time.perf_counter() - started


async def _tenant_baseline(target: Target) -> list[float]:
    url = target.server.base_url + CONTENT
    async with _session(TENANT_ADDRESS, 1) as session:
        results = [
            await _timed_get(session, url, target.headers(target.tenant_key))
            for _ in range(BASELINE_REQUESTS)
        ]
    assert [status for status, _ in results] == [200] * BASELINE_REQUESTS
    return [latency for _, latency in results]


async def _flood(target: Target, probe: str, flooders: int) -> Flooded:
    """``flooders`` anonymous loops on ``probe`` and one tenant loop, for FLOOD_SECONDS."""
    seen = Flooded()
    base = target.server.base_url
    deadline = time.monotonic() + FLOOD_SECONDS

    async def flooder(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            status, latency = await _timed_get(session, base + probe)
            seen.flood_statuses.append(status)
            seen.flood_latencies.append(latency)

    async def tenant(session: aiohttp.ClientSession) -> None:
        # Starts once the flood is under way, ends with it.
        await asyncio.sleep(FLOOD_SECONDS / 10)
        while time.monotonic() < deadline:
            status, latency = await _timed_get(
                session, base + CONTENT, target.headers(target.tenant_key)
            )
            seen.tenant_statuses.append(status)
            seen.tenant_latencies.append(latency)

    started, cpu_before = time.monotonic(), target.server.cpu_seconds()
    per_address = -(-flooders // len(ATTACKERS))
    async with contextlib.AsyncExitStack() as stack:
        own = await stack.enter_async_context(_session(TENANT_ADDRESS, 1))
        attackers = [
            await stack.enter_async_context(_session(address, per_address)) for address in ATTACKERS
        ]
        loops = [flooder(attackers[n % len(attackers)]) for n in range(flooders)]
        await asyncio.wait_for(
            asyncio.gather(tenant(own), *loops),
            FLOOD_SECONDS + 2 * REQUEST_TIMEOUT_SECONDS,
        )
    seen.elapsed = time.monotonic() - started
    seen.server_cpu_seconds = target.server.cpu_seconds() - cpu_before
    return seen


async def _readiness_checks(target: Target) -> float:
    async with _session(TENANT_ADDRESS, 1) as session:
        url = target.server.base_url + "/metrics"
        async with session.get(url, headers=target.headers(target.metrics_key)) as response:
            assert response.status == 200, await response.text()
            return metric_value(await response.text(), CHECKS)


def _report(target: Target, what: str, flooders: int, baseline: list[float], seen: Flooded) -> None:
    ms = 1000
    print(  # noqa: T201 - the figure the issue asks for, shown with -s
        f"\n[{target.label}] {what}: {len(seen.flood_statuses)} anonymous requests "
        f"({flooders} clients, {seen.elapsed:.1f} s, anonymous median "
        f"{statistics.median(seen.flood_latencies) * ms:.1f} ms); tenant median "
        f"{statistics.median(baseline) * ms:.1f} ms before, "
        f"{statistics.median(seen.tenant_latencies) * ms:.1f} ms during "
        f"({len(seen.tenant_latencies)} requests, max "
        f"{max(seen.tenant_latencies) * ms:.0f} ms); server CPU "
        f"{seen.server_cpu_seconds / len(seen.flood_statuses) * ms:.2f} ms per anonymous request"
    )


def _redis_or_skip() -> None:
    client = redis_sync.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis_sync.RedisError as exc:
        pytest.skip(f"Redis not reachable ({exc})")
    finally:
        client.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A live all-in-one server with a tenant key and a metrics key."""
    metrics_port = free_port()
    env = {
        "XYNERGY_RATE_LIMITS": RATE_LIMITS,
        "XYNERGY_READINESS_CACHE_SECONDS": str(READINESS_WINDOW_SECONDS),
        "XYNERGY_METRICS_PORT": str(metrics_port),
    }
    postgres_url = prefix = None
    if request.param != "sqlite":
        _redis_or_skip()
        postgres_url = request.getfixturevalue("postgres_url")
        prefix = f"xyn:test:{uuid.uuid4().hex[:10]}:"
        env |= {
            "XYNERGY_DATABASE_URL": postgres_url,
            "XYNERGY_REDIS_URL": REDIS_URL,
            "XYNERGY_REDIS_KEY_PREFIX": prefix,
        }
    data_dir: Path = tmp_path_factory.mktemp("probe-floods")
    try:
        with live_server(env, data_dir=data_dir) as server:
            yield Target(
                server=server,
                tenant_key=server.issue_key(tenant="acme", scopes=("content:read",)),
                metrics_key=server.issue_key(tenant="ops", scopes=("metrics:read",)),
                metrics_port=metrics_port,
                label=request.param,
            )
    finally:
        if postgres_url is not None:
            asyncio.run(_empty_tables(postgres_url))
        if prefix is not None:
            client = redis_sync.Redis.from_url(REDIS_URL)
            try:
                for key in client.scan_iter(match=prefix + "*", count=500):
                    client.delete(key)
            finally:
                client.close()


class TestReadyzFlood:
    async def test_tenant_is_served_and_the_database_checked_once_per_window(
        self, target: Target
    ) -> None:
        baseline = await _tenant_baseline(target)
        checks_before = await _readiness_checks(target)
        seen = await _flood(target, "/readyz", READYZ_FLOODERS)
        checks = await _readiness_checks(target) - checks_before
        _report(target, "/readyz flood", READYZ_FLOODERS, baseline, seen)
        print(f"[{target.label}] backend checks during the /readyz flood: {checks:.0f}")  # noqa: T201

        assert seen.tenant_statuses
        assert set(seen.tenant_statuses) == {200}
        # Every check the flood saw succeeded (an unshared check per call exhausts
        # the pool and answers 503); a connection the server's per-address cap
        # refused is not this test's business.
        assert 503 not in seen.flood_statuses
        # Hundreds of readiness answers (however slow the machine, most flooders
        # get at least one), but the backends saw one check per window.
        assert seen.flood_statuses.count(200) >= READYZ_FLOODERS // 2
        assert 1 <= checks <= seen.elapsed / READINESS_WINDOW_SECONDS + CHECK_SLACK


class TestMetricsFlood:
    async def test_anonymous_scrapers_are_refused_and_the_tenant_is_served(
        self, target: Target
    ) -> None:
        baseline = await _tenant_baseline(target)
        seen = await _flood(target, "/metrics", METRICS_FLOODERS)
        _report(target, "/metrics flood", METRICS_FLOODERS, baseline, seen)

        assert seen.tenant_statuses
        assert set(seen.tenant_statuses) == {200}
        # Refused: 401 without a key, and 429 once the address has failed
        # authentication too often; never the exposition.
        assert set(seen.flood_statuses) <= {401, 429}
        assert 401 in seen.flood_statuses
        assert len(seen.flood_statuses) >= METRICS_FLOODERS


class TestMetricsPortInServe:
    async def test_serve_exposes_metrics_on_loopback_without_a_key(self, target: Target) -> None:
        async with _session(TENANT_ADDRESS, 1) as session:
            main = await _timed_get(session, target.server.base_url + "/metrics")
            async with session.get(f"http://{LOOPBACK}:{target.metrics_port}/metrics") as side:
                body = await side.text()
        assert main[0] == 401
        assert side.status == 200
        assert CHECKS in body
