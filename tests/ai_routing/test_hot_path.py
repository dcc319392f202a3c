"""What the gateway's hot-path optimisations (issue 15, bench/gateway_hot_path.py) must keep.

* ``Answer.to_cache_json`` is built by hand: every field but the transient ones
  round-trips through the cache text.
* The platform turns FastAPI's native OpenTelemetry off: a request never asks
  OpenTelemetry for its global providers.
* ``PlatformCache.lookup_json``/``store_json`` take a precomputed ``key``: it is the
  same entry the parts name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields

import pytest
from opentelemetry import metrics, trace

from tests.helpers import running
from xynergy.ai_routing.providers.base import ToolCall
from xynergy.ai_routing.routing.requests import Answer
from xynergy.platform.app import create_service_app
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics

TRANSIENT = {"cached", "deduplicated", "latency_ms"}


def _answer() -> Answer:
    return Answer(
        id="gen-1",
        text="echo: hi",
        finish_reason="tool_calls",
        model="m",
        provider="p",
        input_tokens=3,
        output_tokens=5,
        cost_nanos=7,
        created=1_764_115_200,
        cached=False,
        deduplicated=True,
        latency_ms=42,
        tool_calls=(ToolCall("call_1", "lookup", '{"q":"yoga"}'),),
    )


class TestAnswerCacheText:
    def test_every_lasting_field_round_trips(self) -> None:
        answer = _answer()
        restored = Answer.from_cache_json(answer.to_cache_json())
        for field in fields(Answer):
            if field.name not in TRANSIENT:
                assert getattr(restored, field.name) == getattr(answer, field.name), field.name

    def test_transient_fields_are_not_stored(self) -> None:
        restored = Answer.from_cache_json(_answer().to_cache_json())
        assert (restored.cached, restored.deduplicated, restored.latency_ms) == (True, False, 0)


class TestNoOpenTelemetryLookups:
    async def test_a_request_never_asks_for_global_providers(
        self, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        asked: list[str] = []
        tracer_provider, meter_provider = trace.get_tracer_provider, metrics.get_meter_provider

        def count_tracer() -> trace.TracerProvider:
            asked.append("tracer")
            return tracer_provider()

        def count_meter() -> metrics.MeterProvider:
            asked.append("meter")
            return meter_provider()

        monkeypatch.setattr(trace, "get_tracer_provider", count_tracer)
        monkeypatch.setattr(metrics, "get_meter_provider", count_meter)
        app = create_service_app(slug="hot", title="hot", settings=make_settings(), routers=[])
        async with running(app) as client:
            asked.clear()  # start-up may look once; requests must not
            for _ in range(3):
                assert (await client.get("/healthz")).status_code == 200
        assert asked == []


class TestPrecomputedCacheKey:
    async def test_the_given_key_names_the_entry(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        cache = PlatformCache(make_settings(), PlatformMetrics())
        await cache.open()
        try:
            parts = ["model", [("user", "hi")], 32]
            await cache.store_json("ai", "t1", parts, '{"a":1}', key=cache.key("ai", "t1", parts))
            assert await cache.lookup_json("ai", "t1", parts) == '{"a":1}'
            # The key is used as given (the router digests the parts once per request).
            other = cache.key("ai", "t1", ["other"])
            await cache.store_json("ai", "t1", parts, '{"b":2}', key=other)
            assert await cache.lookup_json("ai", "t1", ["other"]) == '{"b":2}'
            assert await cache.lookup_json("ai", "t1", parts, key=other) == '{"b":2}'
            assert await cache.lookup_json("ai", "t1", parts) == '{"a":1}'
        finally:
            await cache.close()
