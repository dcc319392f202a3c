"""The chat completions fast path: repeated bodies are cache hits answered before
FastAPI parses the request again, and new whole (not streamed) bodies are
validated from their bytes without FastAPI's dependency solving."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastapi.routing
import pytest

from tests.ai_routing.gateway import Gateway, gateway
from tests.helpers import auth, issue_key, metric_value, scrape
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.providers.base import ChatMessage
from xynergy.ai_routing.routing.request_memo import ParsedBody, RequestMemo
from xynergy.ai_routing.routing.requests import ChatRequest
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio

BODY = {
    "model": "xynergy-offline",
    "messages": [{"role": "user", "content": "ideas for: a bike shop"}],
    "max_tokens": 30,
}


async def cache_counts(gw: Gateway) -> tuple[float, float]:
    """(hits, misses) of the AI cache namespace on /metrics."""
    text = scrape(gw.platform)
    return (
        metric_value(text, "xynergy_cache_requests_total", namespace="ai", result="hit"),
        metric_value(text, "xynergy_cache_requests_total", namespace="ai", result="miss"),
    )


class TestFastPath:
    async def test_repeated_bodies_are_hits_counted_once_each(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            answers = [
                await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
                for _ in range(3)
            ]
            hits, misses = await cache_counts(gw)
            await gw.engine.ledger.flush()
            usage = (await gw.client.get("/api/usage", headers=gw.headers)).json()
        assert [a.json()["xynergy"]["cached"] for a in answers] == [False, True, True]
        assert len({a.json()["id"] for a in answers}) == 3
        assert (hits, misses) == (2, 1)
        assert usage["totals"]["requests"] == 3
        assert usage["totals"]["cache_hits"] == 2

    async def test_no_cache_skips_it(self, make_settings: Callable[..., Settings]) -> None:
        async with gateway(make_settings()) as gw:
            await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
            fresh = await gw.client.post(
                "/v1/chat/completions",
                json=BODY,
                headers={**gw.headers, "Cache-Control": "no-cache"},
            )
        assert fresh.json()["xynergy"]["cached"] is False

    async def test_checks_before_it_still_hold(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
            _, reader = await issue_key(gw.platform, tenant="acme", scopes=("ai:usage",))
            _, other = await issue_key(gw.platform, tenant="globex", scopes=("ai:generate",))
            forbidden = await gw.client.post(
                "/v1/chat/completions", json=BODY, headers=auth(reader.secret)
            )
            anonymous = await gw.client.post("/v1/chat/completions", json=BODY)
            other_tenant = await gw.client.post(
                "/v1/chat/completions", json=BODY, headers=auth(other.secret)
            )
        assert forbidden.status_code == 403
        assert anonymous.status_code == 401
        assert other_tenant.json()["xynergy"]["cached"] is False

    async def test_the_platform_endpoint_has_one_too(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        body = {"task": "keywords", "prompt": "ideas for: a bakery"}
        async with gateway(make_settings()) as gw:
            first = await gw.generate(**body)
            second = await gw.generate(**body)
        assert second.json()["cached"] is True
        assert second.json()["task"] == "keywords"
        assert second.json()["text"] == first.json()["text"]


class TestMissesOnTheFastPath:
    """A miss pays for the gateway's features, not for FastAPI's body parsing too."""

    @pytest.fixture
    def solved(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """Paths whose endpoint FastAPI solved (dependencies, body validation)."""
        paths: list[str] = []
        solve = fastapi.routing.solve_dependencies

        async def counting(*args: Any, **kwargs: Any) -> Any:
            paths.append(kwargs["request"].url.path)
            return await solve(*args, **kwargs)

        monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
        return paths

    async def test_a_new_body_skips_fastapis_parsing(
        self, make_settings: Callable[..., Settings], solved: list[str]
    ) -> None:
        async with gateway(make_settings()) as gw:
            first = await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
            other = {**BODY, "messages": [{"role": "user", "content": "ideas for: a cafe"}]}
            second = await gw.client.post("/v1/chat/completions", json=other, headers=gw.headers)
            again = await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
            await gw.engine.ledger.flush()
            usage = (await gw.client.get("/api/usage", headers=gw.headers)).json()
        assert [r.status_code for r in (first, second, again)] == [200, 200, 200]
        assert first.json()["object"] == "chat.completion"
        assert "cafe" in second.json()["choices"][0]["message"]["content"]
        assert [r.json()["xynergy"]["cached"] for r in (first, second, again)] == [
            False,
            False,
            True,
        ]
        assert usage["totals"]["requests"] == 3
        assert not [path for path in solved if path.endswith("/chat/completions")]

    async def test_what_it_does_not_settle_goes_to_the_endpoint(
        self, make_settings: Callable[..., Settings], solved: list[str]
    ) -> None:
        async with gateway(make_settings()) as gw:
            streamed = await gw.client.post(
                "/v1/chat/completions", json={**BODY, "stream": True}, headers=gw.headers
            )
            invalid = await gw.client.post(
                "/v1/chat/completions", json={**BODY, "max_tokens": "many"}, headers=gw.headers
            )
            unsupported = await gw.client.post(
                "/v1/chat/completions", json={**BODY, "logprobs": True}, headers=gw.headers
            )
            not_json = await gw.client.post(
                "/v1/chat/completions",
                content=b'{"model": "xynergy-offline"}',
                headers={**gw.headers, "Content-Type": "text/plain"},
            )
        assert streamed.status_code == 200
        assert streamed.headers["content-type"].startswith("text/event-stream")
        # The endpoint's own 422s, in OpenAI's error shape, exactly as before.
        for refused in (invalid, unsupported, not_json):
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"]["type"] == "invalid_request_error"
        assert "unsupported parameter(s): logprobs" in unsupported.text
        assert len([path for path in solved if path.endswith("/chat/completions")]) == 4

    async def test_bounds_are_applied_on_it(self, make_settings: Callable[..., Settings]) -> None:
        async with gateway(make_settings(), AiSettings(max_tokens_limit=100)) as gw:
            refused = await gw.client.post(
                "/v1/chat/completions", json={**BODY, "max_tokens": 101}, headers=gw.headers
            )
        assert refused.status_code == 422
        assert "max_tokens may be at most 100" in refused.json()["error"]["message"]


class TestRequestMemo:
    def chat(self) -> ParsedBody:
        return ParsedBody(ChatRequest(messages=(ChatMessage("user", "x"),), max_tokens=1), False)

    async def test_bounded_in_entries_and_body_size(self) -> None:
        memo = RequestMemo(max_entries=2, max_body_bytes=8)
        for raw in (b"a", b"b", b"c"):
            memo.remember("e", raw, self.chat())
        memo.remember("e", b"123456789", self.chat())
        assert memo.get("e", b"a") is None
        assert memo.get("e", b"c") is not None
        assert memo.get("e", b"123456789") is None
        assert memo.get("other", b"c") is None

    async def test_disabled_with_zero_entries(self) -> None:
        memo = RequestMemo(max_entries=0, max_body_bytes=8)
        memo.remember("e", b"a", self.chat())
        assert memo.get("e", b"a") is None

    async def test_settings_bound_it(self, make_settings: Callable[..., Settings]) -> None:
        ai = AiSettings(request_memo_max_body_bytes=10)
        async with gateway(make_settings(), ai) as gw:
            await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
            second = await gw.client.post("/v1/chat/completions", json=BODY, headers=gw.headers)
        # Too large to remember: the full path answers, still from the cache.
        assert second.json()["xynergy"]["cached"] is True
