"""POST /api/generate/intelligent on the built-in offline provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.ai_routing.gateway import gateway
from tests.helpers import metric_value, scrape
from xynergy.ai_routing.config import AiSettings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio


class TestGenerate:
    async def test_offline_answer_is_labelled_and_deterministic(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            first = await gw.generate(task="keywords", prompt="keyword ideas for a vegan bakery")
            again = await gw.generate(
                task="keywords",
                prompt="keyword ideas for a vegan bakery",
                headers={"Cache-Control": "no-cache"},
            )
        assert first.status_code == 200, first.text
        body = first.json()
        assert body["provider"] == "offline"
        assert body["model"] == "xynergy-offline"
        assert "vegan bakery" in body["text"]
        assert body["cached"] is False
        assert body["usage"]["output_tokens"] == len(body["text"].split())
        assert again.json()["text"] == body["text"]
        assert again.json()["cached"] is False

    async def test_second_identical_request_is_a_cache_hit(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            first = await gw.generate(prompt="ideas for a running blog")
            # Spelling differences that cannot change the answer share the entry.
            second = await gw.generate(prompt="  ideas for a   running blog ", task="content")
            metrics = scrape(gw.platform)
        assert first.json()["cached"] is False
        assert second.json()["cached"] is True
        assert second.json()["text"] == first.json()["text"]
        assert second.json()["usage"]["cost_usd"] == "0.000000000"
        assert (
            metric_value(metrics, "xynergy_cache_requests_total", namespace="ai", result="hit") == 1
        )
        assert (
            metric_value(
                metrics,
                "xynergy_ai_upstream_calls_total",
                provider="offline",
                model="xynergy-offline",
                outcome="ok",
            )
            == 1
        )

    async def test_no_store_keeps_the_answer_out_of_the_cache(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            await gw.generate(prompt="a private question", headers={"Cache-Control": "no-store"})
            second = await gw.generate(prompt="a private question")
        assert second.json()["cached"] is False

    async def test_tenants_never_share_cached_answers(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        settings = make_settings()
        async with gateway(settings) as gw:
            await gw.generate(prompt="shared words")
            from tests.helpers import auth, issue_key

            _, other = await issue_key(gw.platform, tenant="globex", scopes=("ai:generate",))
            response = await gw.client.post(
                "/api/generate/intelligent",
                json={"prompt": "shared words"},
                headers=auth(other.secret),
            )
        assert response.json()["cached"] is False


class TestGenerateValidation:
    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({}, 422),
            ({"prompt": "x", "messages": [{"role": "user", "content": "y"}]}, 422),
            ({"prompt": "x", "max_tokens": 9000}, 422),
            ({"prompt": "x", "temperature": 3}, 422),
            ({"prompt": "x", "preference": "fastest"}, 422),
            ({"prompt": "x", "model": "no-such-model"}, 404),
            ({"prompt": "   "}, 422),
            ({"messages": [{"role": "tool", "content": "x"}]}, 422),
            ({"prompt": "x" * 2_001}, 413),
        ],
    )
    async def test_bad_input_gets_a_clear_error_and_calls_nothing(
        self, make_settings: Callable[..., Settings], body: dict[str, object], status: int
    ) -> None:
        ai = AiSettings(prompt_max_chars=2_000)
        async with gateway(make_settings(), ai) as gw:
            response = await gw.generate(**body)
            metrics = scrape(gw.platform)
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error", "detail", "request_id"}
        assert "xynergy_ai_upstream_calls_total{" not in metrics

    async def test_a_key_without_ai_generate_is_refused(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings(), scopes=("ai:usage",)) as gw:
            response = await gw.generate(prompt="hello")
        assert response.status_code == 403
