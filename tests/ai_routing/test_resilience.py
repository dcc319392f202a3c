"""Breakers, fallbacks, timeouts and cut streams against local fake providers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ai_routing.fakes import FakeAnthropic, FakeOpenAI, expected_answer
from tests.ai_routing.gateway import (
    gateway,
    generous_limits,
    http_model,
    two_provider_catalogue,
    write_catalogue,
)
from tests.helpers import metric_value, scrape
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.providers.base import ChatMessage
from xynergy.ai_routing.routing.requests import ChatRequest
from xynergy.ai_routing.routing.router import Caller
from xynergy.platform.config import Settings
from xynergy.platform.exceptions import CircuitOpen

pytestmark = pytest.mark.asyncio

THRESHOLD = 5


def single(tmp_path: Path, upstream: FakeOpenAI, **provider: object) -> AiSettings:
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "alpha", "kind": "openai", "base_url": upstream.base_url, **provider}],
        models=[http_model("m", "alpha")],
    )
    return AiSettings(catalogue=catalogue)


def chat(content: str, model: str = "m", stream: bool = False) -> dict[str, object]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 50,
        "stream": stream,
    }


class TestBreaker:
    async def test_opens_after_five_failures_then_fails_fast_without_calling(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.fail_next(THRESHOLD, status=500)
            settings = make_settings(breaker_reset_seconds=60)
            async with gateway(settings, single(tmp_path, upstream)) as gw:
                for i in range(THRESHOLD):
                    failed = await gw.client.post(
                        "/v1/chat/completions", json=chat(f"q{i}"), headers=gw.headers
                    )
                    assert failed.status_code == 503
                refused = await gw.client.post(
                    "/v1/chat/completions", json=chat("next"), headers=gw.headers
                )
                router = gw.engine.router
                caller = Caller(gw.tenant_id, gw.key_id, "rid", "ai-routing-engine")
                request = ChatRequest(
                    messages=(ChatMessage("user", "timed"),), max_tokens=5, model="m"
                )
                timings = []
                for _ in range(3):
                    started = time.perf_counter()
                    with pytest.raises(CircuitOpen):
                        await router.complete(caller, request)
                    timings.append(time.perf_counter() - started)
                metrics = scrape(gw.platform)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "circuit_open"
        assert refused.headers["Retry-After"] == "60"
        assert upstream.calls == THRESHOLD, "an open breaker never touches the upstream"
        assert min(timings) < 0.005
        assert metric_value(metrics, "xynergy_circuit_breaker_state", circuit="ai:alpha:m") == 1

    async def test_after_the_cool_down_one_probe_goes_through_and_closes_it(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.fail_next(THRESHOLD, status=502)
            settings = make_settings(breaker_reset_seconds=0.3, rate_limits=generous_limits())
            async with gateway(settings, single(tmp_path, upstream)) as gw:
                for i in range(THRESHOLD):
                    await gw.client.post(
                        "/v1/chat/completions", json=chat(f"q{i}"), headers=gw.headers
                    )
                await asyncio.sleep(0.4)
                upstream.gate = asyncio.Event()
                probes = [
                    asyncio.create_task(
                        gw.client.post(
                            "/v1/chat/completions", json=chat(f"probe {i}"), headers=gw.headers
                        )
                    )
                    for i in range(5)
                ]
                await upstream.wait_for_calls(THRESHOLD + 1)
                await asyncio.sleep(0.05)
                assert upstream.calls == THRESHOLD + 1, "only one probe while half-open"
                upstream.gate.set()
                statuses = sorted(
                    response.status_code for response in await asyncio.gather(*probes)
                )
                after = await gw.client.post(
                    "/v1/chat/completions", json=chat("after"), headers=gw.headers
                )
                metrics = scrape(gw.platform)
        assert statuses == [200, 503, 503, 503, 503]
        assert after.status_code == 200
        assert metric_value(metrics, "xynergy_circuit_breaker_state", circuit="ai:alpha:m") == 0

    async def test_client_errors_from_the_provider_never_open_it(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.fail_next(THRESHOLD * 2, status=400, message="context too long")
            async with gateway(make_settings(), single(tmp_path, upstream)) as gw:
                statuses = [
                    (
                        await gw.client.post(
                            "/v1/chat/completions", json=chat(f"q{i}"), headers=gw.headers
                        )
                    ).status_code
                    for i in range(THRESHOLD * 2)
                ]
                rejected = await gw.client.post(
                    "/v1/chat/completions", json=chat("q0"), headers=gw.headers
                )
        assert statuses == [400] * (THRESHOLD * 2)
        assert rejected.status_code == 200
        assert upstream.calls == THRESHOLD * 2 + 1

    async def test_state_is_shared_by_replicas_through_redis(
        self,
        make_settings: Callable[..., Settings],
        tmp_path: Path,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.fail_next(THRESHOLD, status=500)
            settings = make_settings(
                redis_url=redis_url, redis_key_prefix=redis_prefix, breaker_reset_seconds=60
            )
            ai = single(tmp_path, upstream)
            async with gateway(settings, ai) as first, gateway(settings, ai) as second:
                for i in range(THRESHOLD):
                    await first.client.post(
                        "/v1/chat/completions", json=chat(f"q{i}"), headers=first.headers
                    )
                refused = await second.client.post(
                    "/v1/chat/completions", json=chat("other replica"), headers=second.headers
                )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "circuit_open"
        assert upstream.calls == THRESHOLD


class TestFallback:
    async def test_a_failing_provider_falls_back_and_stops_being_called_once_open(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.fail_next(100, status=503)
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            async with gateway(make_settings(), ai) as gw:
                answers = [
                    await gw.client.post(
                        "/v1/chat/completions", json=chat(f"q{i}", "primary"), headers=gw.headers
                    )
                    for i in range(THRESHOLD + 3)
                ]
        assert [a.status_code for a in answers] == [200] * (THRESHOLD + 3)
        assert {a.json()["provider"] for a in answers} == {"beta"}
        assert answers[0].json()["choices"][0]["message"]["content"] == expected_answer("q0", 50)
        assert alpha.calls == THRESHOLD, "no calls to alpha once its breaker opened"
        assert beta.calls == THRESHOLD + 3

    async def test_preference_routing_falls_back_across_the_ranking(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.fail_next(1, status=429)
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            async with gateway(make_settings(), ai) as gw:
                answer = await gw.generate(prompt="route me", preference="quality")
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "secondary"
        assert alpha.calls == 1

    async def test_every_breaker_open_answers_503_with_retry_after(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.fail_next(100, status=500)
            beta.fail_next(100, status=529)
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            settings = make_settings(breaker_reset_seconds=42)
            async with gateway(settings, ai) as gw:
                for i in range(THRESHOLD):
                    await gw.client.post(
                        "/v1/chat/completions", json=chat(f"q{i}", "primary"), headers=gw.headers
                    )
                refused = await gw.client.post(
                    "/v1/chat/completions", json=chat("last", "primary"), headers=gw.headers
                )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "circuit_open"
        assert refused.headers["Retry-After"] == "42"
        # Each candidate named, the primary included, with why it was not called.
        message = refused.json()["error"]["message"]
        assert "primary (circuit open, not called); secondary (circuit open, not called)" in message
        assert (alpha.calls, beta.calls) == (THRESHOLD, THRESHOLD)


class TestTimeoutsAndCuts:
    async def test_a_slow_provider_answers_504(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as upstream:
            upstream.delay_seconds = 2
            async with gateway(
                make_settings(), single(tmp_path, upstream, timeout_seconds=0.2)
            ) as gw:
                started = time.perf_counter()
                response = await gw.client.post(
                    "/v1/chat/completions", json=chat("slow"), headers=gw.headers
                )
                elapsed = time.perf_counter() - started
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "upstream_timeout"
        assert "m (alpha: timed out)" in response.json()["error"]["message"]
        assert elapsed < 1.5

    @pytest.mark.parametrize("failure", ["cut", "error_event"])
    async def test_a_stream_broken_midway_ends_with_an_error_event(
        self, make_settings: Callable[..., Settings], tmp_path: Path, failure: str
    ) -> None:
        async with FakeOpenAI() as upstream:
            if failure == "cut":
                upstream.cut_stream_after(2)
            else:
                upstream.error_stream_after(2)
            async with gateway(make_settings(), single(tmp_path, upstream)) as gw:
                response = await gw.client.post(
                    "/v1/chat/completions",
                    json=chat("a long enough question to stream in parts", stream=True),
                    headers=gw.headers,
                )
                again = await gw.client.post(
                    "/v1/chat/completions",
                    json=chat("a long enough question to stream in parts"),
                    headers=gw.headers,
                )
        assert response.status_code == 200
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert '"content"' in events[0], "deltas before the failure were delivered"
        assert '"error"' in events[-1]
        assert "stream_interrupted" in events[-1]
        assert "data: [DONE]" not in response.text
        # A cut answer is never cached: the next request calls the provider again.
        assert again.json()["xynergy"]["cached"] is False
        assert upstream.calls == 2

    async def test_a_stream_that_fails_before_its_first_delta_falls_back(
        self, make_settings: Callable[..., Settings], tmp_path: Path
    ) -> None:
        async with FakeOpenAI() as alpha, FakeAnthropic() as beta:
            alpha.cut_stream_after(0)
            ai = AiSettings(
                catalogue=two_provider_catalogue(tmp_path, alpha.base_url, beta.base_url)
            )
            async with gateway(make_settings(), ai) as gw:
                response = await gw.client.post(
                    "/v1/chat/completions",
                    json=chat("fall back before anything was sent", "primary", stream=True),
                    headers=gw.headers,
                )
        assert response.status_code == 200
        assert response.text.endswith("data: [DONE]\n\n")
        assert '"provider":"beta"' in response.text
