"""End to end: requests reach the ledger and /api/usage; token limits; cached streams."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.ai_routing.gateway import gateway, stream_text
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.providers.base import ChatMessage
from xynergy.ai_routing.routing.requests import CachePolicy, ChatRequest
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio


class TestUsageReport:
    async def test_billed_cached_and_failed_requests_all_reach_the_report(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            first = (await gw.generate(task="keywords", prompt="ideas for: tea shop")).json()
            await gw.generate(task="keywords", prompt="ideas for: tea shop")
            await gw.generate(task="summary", prompt="summarise: tea history")
            refused = await gw.generate(task="summary", prompt="x", model="missing-model")
            await gw.engine.ledger.flush()
            report = (await gw.client.get("/api/usage", headers=gw.headers)).json()
        assert refused.status_code == 404
        totals = report["totals"]
        assert totals["requests"] == 3, "a request refused before routing is not a call"
        assert totals["cache_hits"] == 1
        rows = {(row["task"], row["model"]): row for row in report["rows"]}
        keywords = rows[("keywords", "xynergy-offline")]
        assert keywords["requests"] == 2
        assert keywords["cache_hits"] == 1
        # Only the call that reached the provider carries tokens.
        assert keywords["output_tokens"] == first["usage"]["output_tokens"]
        assert rows[("summary", "xynergy-offline")]["requests"] == 1


class TestTokenLimit:
    async def test_a_key_past_its_tokens_per_minute_gets_429(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        ai = AiSettings(tokens_per_minute="300/minute")
        async with gateway(make_settings(), ai) as gw:
            admitted = await gw.generate(prompt="first question", max_tokens=200)
            refused = await gw.generate(prompt="second question", max_tokens=200)
            # A cache hit costs no tokens, so it is still served.
            cached = await gw.generate(prompt="first question", max_tokens=200)
        assert admitted.status_code == 200
        assert refused.status_code == 429
        assert refused.json()["error"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        assert cached.status_code == 200
        assert cached.json()["cached"] is True


class TestCachedStreams:
    async def test_a_cached_answer_is_replayed_as_a_stream(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            whole = (await gw.chat("cache me: running shoes")).json()
            streamed = await gw.chat("cache me: running shoes", stream=True)
        assert streamed.status_code == 200
        assert stream_text(streamed.text) == whole["choices"][0]["message"]["content"]
        assert '"cached":true' in streamed.text
        assert streamed.text.endswith("data: [DONE]\n\n")


class TestCachePolicy:
    @pytest.mark.parametrize(
        ("prompt", "stable"),
        [
            ("Write a tagline for a bakery", True),
            ("What are the latest SEO trends?", False),
            ("Plan posts for next week", False),
            ("Summarise the 2026 results", False),
            ("Describe nowhere towns", True),
        ],
    )
    async def test_time_sensitive_prompts_get_the_short_ttl(
        self, prompt: str, stable: bool
    ) -> None:
        ai = AiSettings(cache_stable_ttl_seconds=86_400, cache_volatile_ttl_seconds=300)
        policy = CachePolicy(ai)
        request = ChatRequest(messages=(ChatMessage("user", prompt),), max_tokens=10)
        assert policy.is_stable(request) is stable
        assert policy.ttl(request) == (86_400 if stable else 300)

    async def test_rules_come_from_settings(self) -> None:
        ai = AiSettings(time_sensitive_patterns='["\\\\bquarterly\\\\b"]')  # type: ignore[arg-type]
        policy = CachePolicy(ai)
        assert not policy.is_stable(
            ChatRequest(messages=(ChatMessage("user", "quarterly plan"),), max_tokens=1)
        )
        assert policy.is_stable(
            ChatRequest(messages=(ChatMessage("user", "latest news"),), max_tokens=1)
        )
