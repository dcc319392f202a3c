"""The engine's refusals reach the assistant's caller as the engine gave them."""

from __future__ import annotations

from xynergy.ai_assistant.ai_client import AiRefused, _refusal
from xynergy.platform.exceptions import UpstreamUnavailable

LIMITED = {
    "Retry-After": "17",
    "RateLimit-Limit": "200000",
    "RateLimit-Remaining": "0",
    "RateLimit-Reset": "17",
    "RateLimit-Policy": "200000;w=60",
    "Content-Type": "application/json",
    "X-Request-ID": "the-engine's-own",
}


class TestRefusal:
    def test_a_429_keeps_when_to_retry_and_nothing_else(self) -> None:
        body = {"error": "rate_limited", "detail": "The ai_tokens limit is used up."}
        refused = _refusal(429, body, LIMITED)
        assert isinstance(refused, AiRefused)
        assert (refused.status_code, refused.code) == (429, "rate_limited")
        # The platform's 429 contract: Retry-After and the RateLimit fields.
        assert refused.headers == {
            name: LIMITED[name]
            for name in (
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            )
        }

    def test_the_openai_shape_under_v1_is_read_too(self) -> None:
        body = {"error": {"code": "budget_exceeded", "message": "Spent."}}
        refused = _refusal(402, body, {})
        assert (refused.status_code, refused.code, refused.detail) == (
            402,
            "budget_exceeded",
            "Spent.",
        )
        assert refused.headers == {}

    def test_a_server_error_is_unavailable(self) -> None:
        assert isinstance(_refusal(502, None, LIMITED), UpstreamUnavailable)
