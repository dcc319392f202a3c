"""In-flight dedup across replicas: identical requests on N replicas make one call.

Three gateways in this process share one Redis and one database, as three
replicas would; the AI provider is a local fake speaking the OpenAI protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.ai_routing.fakes import FakeOpenAI, expected_answer
from tests.ai_routing.gateway import (
    Gateway,
    gateway,
    generous_limits,
    http_model,
    stream_text,
    write_catalogue,
)
from tests.helpers import auth, issue_key
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

PROMPT = "one question for the whole cluster"
MAX_TOKENS = 20
REPLICAS = 3
CONCURRENT = 300
# Bounds on waits for events, not timing assertions: generous for a busy machine.
ARRIVAL_TIMEOUT_SECONDS = 60.0
SHARED_WAIT_SECONDS = 30.0


def cluster_ai(tmp_path: Path, upstream: FakeOpenAI, **overrides: Any) -> AiSettings:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "alpha")],
    )
    values: dict[str, Any] = {
        "catalogue": catalogue,
        "tokens_per_minute": "100000000/minute",
        "shared_dedup_wait_seconds": SHARED_WAIT_SECONDS,
        **overrides,
    }
    return AiSettings(**values)


@asynccontextmanager
async def replicas(
    settings: Settings, ai: AiSettings, n: int = REPLICAS
) -> AsyncIterator[list[Gateway]]:
    """``n`` gateways sharing the settings' Redis and database, keys verified."""
    async with AsyncExitStack() as stack:
        gateways = [await stack.enter_async_context(gateway(settings, ai)) for _ in range(n)]
        for gw in gateways:
            # Verified (and cached) before the flood: the test is about AI calls.
            warm = await gw.client.get("/v1/models", headers=gw.headers)
            assert warm.status_code == 200, warm.text
        yield gateways


def body(stream: bool = False, content: str = PROMPT) -> dict[str, object]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }


def ask(gw: Gateway, payload: dict[str, object], headers: dict[str, str] | None = None) -> Any:
    return asyncio.create_task(
        gw.client.post("/v1/chat/completions", json=payload, headers=headers or gw.headers)
    )


def waiting_on_redis(gw: Gateway) -> int:
    """Request keys this replica leads or waits on through Redis (0: no Redis layer)."""
    shared = gw.engine.router.shared_flights
    return 0 if shared is None else shared.waiting


def parked(gws: list[Gateway]) -> int:
    """Requests waiting for another replica's call (0: no Redis layer)."""
    return sum(
        0 if gw.engine.router.shared_flights is None else gw.engine.router.shared_flights.parked
        for gw in gws
    )


def counter(gw: Gateway, name: str, **labels: str) -> float:
    metric = getattr(gw.engine.router.metrics, name)
    return float((metric.labels(**labels) if labels else metric)._value.get())


async def wait_until(predicate: Callable[[], object], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def every_replica_waiting(gateways: list[Gateway], local_joins: int) -> None:
    """Every replica but the leader's waits for its call through Redis, and
    ``local_joins`` requests in all joined a flight of their own replica."""
    await wait_until(
        lambda: (
            parked(gateways) >= len(gateways) - 1
            and sum(counter(gw, "dedup_hits", scope="local") for gw in gateways) >= local_joins
        ),
        timeout=ARRIVAL_TIMEOUT_SECONDS,
    )


@pytest.fixture
def cluster_settings(
    make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> Settings:
    return make_settings(
        redis_url=redis_url, redis_key_prefix=redis_prefix, rate_limits=generous_limits()
    )


class TestAcrossReplicas:
    async def test_three_hundred_requests_on_three_replicas_make_one_call(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with replicas(cluster_settings, cluster_ai(tmp_path, upstream)) as gws:
                tasks = [ask(gws[i % REPLICAS], body()) for i in range(CONCURRENT)]
                await upstream.wait_for_calls(1, timeout=ARRIVAL_TIMEOUT_SECONDS)
                await every_replica_waiting(gws, local_joins=CONCURRENT - REPLICAS)
                assert upstream.calls == 1
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
                remote = sum(counter(gw, "dedup_hits", scope="remote") for gw in gws)
                fallbacks = sum(
                    counter(gw, "dedup_fallbacks", reason=reason)
                    for gw in gws
                    for reason in ("redis_unavailable", "redis_error", "full")
                )
        assert upstream.calls == 1
        assert [response.status_code for response in responses] == [200] * CONCURRENT
        texts = {response.json()["choices"][0]["message"]["content"] for response in responses}
        assert texts == {expected_answer(PROMPT, MAX_TOKENS)}
        flags = [response.json()["xynergy"]["deduplicated"] for response in responses]
        assert flags.count(False) == 1
        assert (remote, fallbacks) == (REPLICAS - 1, 0)

    async def test_streams_on_other_replicas_get_the_answer_replayed(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with replicas(cluster_settings, cluster_ai(tmp_path, upstream)) as gws:
                tasks = [ask(gws[i % REPLICAS], body(stream=True)) for i in range(30)]
                await every_replica_waiting(gws, local_joins=30 - REPLICAS)
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
        assert upstream.calls == 1
        for response in responses:
            assert response.status_code == 200
            assert response.text.endswith("data: [DONE]\n\n")
            assert stream_text(response.text) == expected_answer(PROMPT, MAX_TOKENS)

    async def test_another_tenant_is_never_given_the_answer(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with replicas(cluster_settings, cluster_ai(tmp_path, upstream), n=2) as gws:
                _, other = await issue_key(
                    gws[1].platform, tenant="globex", scopes=("ai:generate",)
                )
                first = ask(gws[0], body())
                await upstream.wait_for_calls(1, timeout=ARRIVAL_TIMEOUT_SECONDS)
                await wait_until(lambda: waiting_on_redis(gws[0]) == 1, ARRIVAL_TIMEOUT_SECONDS)
                second = ask(gws[1], body(), headers=auth(other.secret))
                # Globex's identical request leads a call of its own, on its replica.
                await upstream.wait_for_calls(2, timeout=ARRIVAL_TIMEOUT_SECONDS)
                upstream.gate.set()
                responses = await asyncio.gather(first, second)
        assert upstream.calls == 2
        assert [r.json()["xynergy"]["deduplicated"] for r in responses] == [False, False]

    async def test_a_failed_holder_fails_its_waiters_at_once_and_a_retry_calls_again(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            upstream.fail_next(1, status=500)
            async with replicas(cluster_settings, cluster_ai(tmp_path, upstream)) as gws:
                tasks = [ask(gws[i % REPLICAS], body()) for i in range(30)]
                await every_replica_waiting(gws, local_joins=30 - REPLICAS)
                upstream.gate.set()
                # Well within the shared wait: waiters are told, they do not time out.
                async with asyncio.timeout(SHARED_WAIT_SECONDS / 2):
                    failed = await asyncio.gather(*tasks)
                timeouts = sum(counter(gw, "dedup_wait_timeouts") for gw in gws)
                retried = await gws[1].client.post(
                    "/v1/chat/completions", json=body(), headers=gws[1].headers
                )
        assert {response.status_code for response in failed} == {503}
        assert {response.json()["error"]["code"] for response in failed} == {"upstream_unavailable"}
        assert timeouts == 0
        # The failure was shared, not remembered: the next request calls again.
        assert retried.status_code == 200
        assert upstream.calls == 2


class TestLongCalls:
    async def test_a_call_longer_than_its_lock_keeps_it(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        # The lock lasts 0.6 s and is renewed from a third of that on: a call of
        # 2 s (over three TTLs) is never taken over by the other replica's waiter.
        async with (
            FakeOpenAI() as upstream,
            replicas(
                cluster_settings,
                cluster_ai(tmp_path, upstream, shared_dedup_lock_ttl_seconds=0.6),
                n=2,
            ) as gws,
        ):
            upstream.gate = asyncio.Event()
            leader = ask(gws[0], body())
            await upstream.wait_for_calls(1, timeout=ARRIVAL_TIMEOUT_SECONDS)
            waiter = ask(gws[1], body())
            await wait_until(lambda: parked(gws) == 1, ARRIVAL_TIMEOUT_SECONDS)
            await asyncio.sleep(2.0)
            calls_while_slow = upstream.calls
            upstream.gate.set()
            responses = await asyncio.gather(leader, waiter)
            timeouts = sum(counter(gw, "dedup_wait_timeouts") for gw in gws)
        assert calls_while_slow == 1
        assert [response.status_code for response in responses] == [200, 200]
        assert [r.json()["xynergy"]["deduplicated"] for r in responses] == [False, True]
        assert timeouts == 0


class TestHolderGone:
    async def test_a_lock_left_by_a_crashed_replica_lapses_and_is_taken_over(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with (
            FakeOpenAI() as upstream,
            replicas(
                cluster_settings,
                cluster_ai(tmp_path, upstream, shared_dedup_lock_ttl_seconds=1.0),
                n=1,
            ) as (gw,),
        ):
            await crashed_holder(gw, body(), lapse_ms=1_500)
            learnt = upstream.calls
            task = ask(gw, body())
            await wait_until(lambda: parked([gw]) == 1, ARRIVAL_TIMEOUT_SECONDS)
            # While the dead replica's lock lasts, nobody calls.
            await asyncio.sleep(0.5)
            assert upstream.calls == learnt
            # Taken over once the lock lapses (1.5 s), long before the shared wait ends.
            async with asyncio.timeout(SHARED_WAIT_SECONDS / 2):
                response = await task
            timeouts = counter(gw, "dedup_wait_timeouts")
        assert response.status_code == 200
        assert upstream.calls == learnt + 1
        assert timeouts == 0  # taken over when the lock lapsed, not after the wait

    async def test_a_waiter_calls_itself_after_the_bounded_wait(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with (
            FakeOpenAI() as upstream,
            replicas(
                cluster_settings, cluster_ai(tmp_path, upstream, shared_dedup_wait_seconds=1.0), n=1
            ) as (gw,),
        ):
            # A holder that keeps renewing and never answers.
            await crashed_holder(gw, body(), lapse_ms=600_000)
            learnt = upstream.calls
            async with asyncio.timeout(ARRIVAL_TIMEOUT_SECONDS):
                response = await ask(gw, body())
            timeouts = counter(gw, "dedup_wait_timeouts")
        assert response.status_code == 200
        assert upstream.calls == learnt + 1
        assert timeouts == 1


class TestWithoutRedis:
    async def test_redis_down_falls_back_to_sharing_per_process(
        self, cluster_settings: Settings, tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with replicas(cluster_settings, cluster_ai(tmp_path, upstream), n=1) as (gw,):
                shared = gw.engine.router.shared_flights
                assert shared is not None
                # The layer's commands now reach a closed port (nothing listens on 1).
                dead = shared._redis = Redis.from_url("redis://127.0.0.1:1/0")
                tasks = [ask(gw, body()) for _ in range(20)]
                await wait_until(
                    lambda: counter(gw, "dedup_hits", scope="local") >= 19,
                    ARRIVAL_TIMEOUT_SECONDS,
                )
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
                fallbacks = counter(gw, "dedup_fallbacks", reason="redis_error")
                await dead.aclose()
        assert [response.status_code for response in responses] == [200] * 20
        assert upstream.calls == 1
        assert fallbacks == 1

    async def test_without_redis_requests_are_shared_per_process(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            settings = make_settings(rate_limits=generous_limits())
            async with replicas(settings, cluster_ai(tmp_path, upstream), n=1) as (gw,):
                assert gw.engine.router.shared_flights is None
                tasks = [ask(gw, body()) for _ in range(20)]
                await wait_until(
                    lambda: counter(gw, "dedup_hits", scope="local") >= 19,
                    ARRIVAL_TIMEOUT_SECONDS,
                )
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
        assert [response.status_code for response in responses] == [200] * 20
        assert upstream.calls == 1


async def crashed_holder(gw: Gateway, payload: dict[str, object], *, lapse_ms: int) -> None:
    """Take the request's lock as a replica would, then never answer nor release."""
    shared = gw.engine.router.shared_flights
    assert shared is not None
    name = await flight_name(gw, payload)
    assert await shared._redis.set(name + ":lock", "dead-replica", px=lapse_ms, nx=True)


async def flight_name(gw: Gateway, payload: dict[str, object]) -> str:
    """The Redis name of ``payload``'s flight, learnt from a request that leads it."""
    shared = gw.engine.router.shared_flights
    assert shared is not None
    names: list[str] = []
    original = shared.name

    def spy(local_key: str, tenant_id: str) -> str:
        names.append(original(local_key, tenant_id))
        return names[-1]

    shared.name = spy  # type: ignore[method-assign]
    try:
        # no-store: the answer must not be cached, the test asks again.
        response = await gw.client.post(
            "/v1/chat/completions",
            json=payload,
            headers={**gw.headers, "Cache-Control": "no-store"},
        )
        assert response.status_code == 200, response.text
    finally:
        del shared.name
    # Forget that call's outcome: the test's request must find only the lock.
    await shared._redis.delete(names[-1] + ":result")
    return names[-1]
