"""The gateway's own metrics, on the platform registry (so on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

from xynergy.platform.monitoring import PlatformMetrics

__all__ = ["AiMetrics"]


class AiMetrics:
    """Upstream calls, tokens, cost and shared calls; labels come from the catalogue."""

    def __init__(self, metrics: PlatformMetrics) -> None:
        self.upstream_calls = metrics.service_metric(
            Counter,
            "xynergy_ai_upstream_calls",
            "Calls to AI providers by provider, model and outcome.",
            ["provider", "model", "outcome"],
        )
        self.tokens = metrics.service_metric(
            Counter,
            "xynergy_ai_tokens",
            "Tokens billed by providers, by model and direction (input/output).",
            ["model", "direction"],
        )
        self.cost_usd = metrics.service_metric(
            Counter,
            "xynergy_ai_cost_usd",
            "Cost of provider calls in US dollars, by model.",
            ["model"],
        )
        self.deduplicated = metrics.service_metric(
            Counter,
            "xynergy_ai_deduplicated_requests",
            "Requests answered by joining an identical call already in flight.",
        )
        self.dedup_hits = metrics.service_metric(
            Counter,
            "xynergy_ai_dedup_hits",
            "Requests that shared an identical call in flight, by where it ran (local: this "
            "process; remote: another replica, through Redis).",
            ["scope"],
        )
        self.dedup_wait_timeouts = metrics.service_metric(
            Counter,
            "xynergy_ai_dedup_wait_timeouts",
            "Requests that waited shared_dedup_wait_seconds for another replica's call, then "
            "called the provider themselves.",
        )
        self.dedup_fallbacks = metrics.service_metric(
            Counter,
            "xynergy_ai_dedup_fallbacks",
            "Requests shared per process only, not across replicas, by reason (redis_unavailable, "
            "redis_error, full).",
            ["reason"],
        )
        self.fallbacks = metrics.service_metric(
            Counter,
            "xynergy_ai_fallbacks",
            "Times a request moved on to its next candidate model, by reason.",
            ["reason"],
        )
