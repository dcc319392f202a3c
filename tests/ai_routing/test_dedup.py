"""In-flight dedup: identical concurrent requests share one upstream call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ai_routing.fakes import FakeOpenAI, expected_answer
from tests.ai_routing.gateway import (
    Gateway,
    gateway,
    generous_limits,
    http_model,
    stream_text,
    write_catalogue,
)
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

PROMPT = "one shared question"
CONCURRENT = 1_000
# A bound on a wait for an event, not a timing assertion: generous for a busy machine.
ARRIVAL_TIMEOUT_SECONDS = 60.0


def one_model_ai(tmp_path: Path, upstream: FakeOpenAI) -> AiSettings:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url}],
        models=[http_model("m", "alpha")],
    )
    return AiSettings(catalogue=catalogue, tokens_per_minute="100000000/minute")


def joined(gw: Gateway) -> float:
    """Requests that joined a call in flight so far (the gateway's own counter)."""
    return float(gw.engine.router.metrics.deduplicated._value.get())


async def wait_until(
    predicate: Callable[[], object], timeout: float = ARRIVAL_TIMEOUT_SECONDS
) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def body(stream: bool = False) -> dict[str, object]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": 20,
        "stream": stream,
    }


class TestDedup:
    async def test_a_thousand_identical_requests_make_one_upstream_call(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            settings = make_settings(rate_limits=generous_limits())
            async with gateway(settings, one_model_ai(tmp_path, upstream)) as gw:
                # The key is verified (and cached) before the flood: this test is about
                # AI calls, and a thousand first uses of an uncached key would each
                # read it from the database and compete for the connection pool.
                warm = await gw.client.get("/v1/models", headers=gw.headers)
                assert warm.status_code == 200, warm.text
                tasks = [
                    asyncio.create_task(
                        gw.client.post("/v1/chat/completions", json=body(), headers=gw.headers)
                    )
                    for _ in range(CONCURRENT)
                ]
                # The leader's call reaches the upstream on its own schedule, possibly
                # after every follower has joined: wait for its arrival, not for time.
                await upstream.wait_for_calls(1, timeout=ARRIVAL_TIMEOUT_SECONDS)
                await wait_until(lambda: joined(gw) >= CONCURRENT - 1)
                assert upstream.calls == 1
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
                assert gw.engine.router.inflight == 0
        assert upstream.calls == 1
        assert all(response.status_code == 200 for response in responses)
        texts = {response.json()["choices"][0]["message"]["content"] for response in responses}
        assert texts == {expected_answer(PROMPT, 20)}
        flags = [response.json()["xynergy"]["deduplicated"] for response in responses]
        assert flags.count(False) == 1

    async def test_streams_are_fanned_out_to_every_waiter(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            settings = make_settings(rate_limits=generous_limits())
            async with gateway(settings, one_model_ai(tmp_path, upstream)) as gw:
                tasks = [
                    asyncio.create_task(
                        gw.client.post(
                            "/v1/chat/completions", json=body(stream=True), headers=gw.headers
                        )
                    )
                    for _ in range(20)
                ]
                await wait_until(lambda: joined(gw) >= 19)
                upstream.gate.set()
                responses = await asyncio.gather(*tasks)
        assert upstream.calls == 1
        for response in responses:
            assert response.status_code == 200
            assert response.text.endswith("data: [DONE]\n\n")
            assert stream_text(response.text) == expected_answer(PROMPT, 20)

    async def test_a_cancelled_waiter_does_not_cancel_the_others(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with gateway(make_settings(), one_model_ai(tmp_path, upstream)) as gw:
                first = asyncio.create_task(
                    gw.client.post("/v1/chat/completions", json=body(), headers=gw.headers)
                )
                await upstream.wait_for_calls(1)
                others = [
                    asyncio.create_task(
                        gw.client.post("/v1/chat/completions", json=body(), headers=gw.headers)
                    )
                    for _ in range(3)
                ]
                await wait_until(lambda: joined(gw) >= 3)
                first.cancel()  # the request that started the call goes away
                others[0].cancel()
                upstream.gate.set()
                done = await asyncio.gather(*others[1:])
                assert gw.engine.router.inflight == 0
        assert upstream.calls == 1
        assert [response.status_code for response in done] == [200, 200]

    async def test_different_tenants_never_share_a_call(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        from tests.helpers import auth, issue_key

        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            async with gateway(make_settings(), one_model_ai(tmp_path, upstream)) as gw:
                _, other = await issue_key(gw.platform, tenant="globex", scopes=("ai:generate",))
                tasks = [
                    asyncio.create_task(
                        gw.client.post("/v1/chat/completions", json=body(), headers=headers)
                    )
                    for headers in (gw.headers, auth(other.secret))
                ]
                await upstream.wait_for_calls(2)
                upstream.gate.set()
                await asyncio.gather(*tasks)
        assert upstream.calls == 2

    async def test_a_failed_call_fails_every_waiter_and_leaves_the_map(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.gate = asyncio.Event()
            upstream.fail_next(1, status=500)
            async with gateway(make_settings(), one_model_ai(tmp_path, upstream)) as gw:
                tasks = [
                    asyncio.create_task(
                        gw.client.post("/v1/chat/completions", json=body(), headers=gw.headers)
                    )
                    for _ in range(5)
                ]
                await wait_until(lambda: joined(gw) >= 4)
                upstream.gate.set()
                failed = await asyncio.gather(*tasks)
                assert gw.engine.router.inflight == 0
                retried = await gw.client.post(
                    "/v1/chat/completions", json=body(), headers=gw.headers
                )
        assert {response.status_code for response in failed} == {503}
        assert retried.status_code == 200
        assert upstream.calls == 2
