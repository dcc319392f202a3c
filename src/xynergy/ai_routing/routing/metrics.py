"""The gateway's own metrics, on the platform registry (so on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["AiMetrics"]


class AiMetrics:
    """Upstream calls, tokens, cost and shared calls; labels come from the catalogue."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        registry = metrics.registry
        self.upstream_calls = Counter(
            "xynergy_ai_upstream_calls",
            "Calls to AI providers by provider, model and outcome.",
            ["provider", "model", "outcome"],
            registry=registry,
        )
        self.tokens = Counter(
            "xynergy_ai_tokens",
            "Tokens billed by providers, by model and direction (input/output).",
            ["model", "direction"],
            registry=registry,
        )
        self.cost_usd = Counter(
            "xynergy_ai_cost_usd",
            "Cost of provider calls in US dollars, by model.",
            ["model"],
            registry=registry,
        )
        self.deduplicated = Counter(
            "xynergy_ai_deduplicated_requests",
            "Requests answered by joining an identical call already in flight.",
            registry=registry,
        )
        self.fallbacks = Counter(
            "xynergy_ai_fallbacks",
            "Times a request moved on to its next candidate model, by reason.",
            ["reason"],
            registry=registry,
        )
