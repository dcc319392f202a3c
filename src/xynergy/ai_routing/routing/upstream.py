"""Calling candidate models in order, each behind its breaker, with safe fallbacks.

A candidate is skipped when its breaker is open, and left for the next one when
the failure is safe to retry elsewhere (5xx, timeouts, connection errors, 429,
the provider refusing our key). A 4xx about the request itself ends the call:
every provider would refuse it. A stream is only moved to another candidate
before its first delta has been handed on; after that a failure is reported to
the client as an error, never hidden behind a clean end.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from xynergy.ai_routing.catalogue import ModelSpec
from xynergy.ai_routing.providers.base import (
    Completion,
    Provider,
    ProviderError,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UpstreamRequest,
)
from xynergy.ai_routing.routing.metrics import AiMetrics
from xynergy.ai_routing.routing.requests import ChatRequest
from xynergy.platform.breaker import Breakers
from xynergy.platform.exceptions import (
    BadRequest,
    CircuitOpen,
    UpstreamTimeout,
    UpstreamUnavailable,
    XynergyError,
)

__all__ = [
    "Delta",
    "StreamInterrupted",
    "UpstreamCaller",
    "UpstreamRejected",
    "UpstreamResult",
    "delta_text",
]

Delta = TextDelta | ToolCallDelta


def delta_text(delta: Delta) -> str:
    """What a delta adds to the answer, for estimates of a cut stream."""
    if isinstance(delta, TextDelta):
        return delta.text
    return (delta.name or "") + delta.arguments


class UpstreamRejected(BadRequest):
    code = "upstream_rejected"
    default_detail = "The AI provider refused the request."


class StreamInterrupted(UpstreamUnavailable):
    code = "stream_interrupted"
    default_detail = "The AI provider's answer was cut off midway."


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    model: ModelSpec
    completion: Completion
    latency_ms: int


def circuit_name(model: ModelSpec) -> str:
    """The breaker of one provider+model pair."""
    return f"ai:{model.provider}:{model.name}"


class UpstreamCaller:
    """Runs one request against its candidates until one answers."""

    def __init__(
        self,
        *,
        breakers: Breakers,
        metrics: AiMetrics,
        breaker_reset_seconds: float,
    ) -> None:
        self._breakers = breakers
        self._metrics = metrics
        self._retry_after = str(max(1, math.ceil(breaker_reset_seconds)))

    async def call(
        self,
        request: ChatRequest,
        candidates: list[ModelSpec],
        *,
        providers: Mapping[str, Provider],
        request_id: str,
        on_delta: Callable[[Delta], None] | None = None,
    ) -> UpstreamResult:
        """The first candidate's answer; streams through ``on_delta`` when given.

        ``providers`` is the lineup the request started with: a reload meanwhile
        does not change the key a call in flight uses.
        """
        last_error: ProviderError | None = None
        # Why each candidate did not answer, in order: the error names them all, so
        # the primary's failure is not hidden behind the last fallback's.
        failures: list[str] = []
        for model in candidates:
            upstream = UpstreamRequest(
                model=model.upstream_model,
                messages=request.messages,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                top_p=request.top_p,
                stop=request.stop,
                request_id=request_id,
                tools=request.tools,
            )
            delivered: list[Delta] = []
            started = time.perf_counter()
            rejected: ProviderError | None = None
            try:
                async with self._breakers.guard(circuit_name(model)):
                    try:
                        completion = await self._call_one(
                            providers[model.provider], upstream, on_delta, delivered
                        )
                    except ProviderError as exc:
                        if exc.breaker_failure:
                            raise
                        rejected = exc  # a 4xx: the breaker counts it as a success
            except CircuitOpen:
                self._metrics.fallbacks.labels(reason="circuit_open").inc()
                failures.append(f"{model.name} (circuit open, not called)")
                continue
            except ProviderError as exc:
                rejected = exc
            if rejected is None:
                latency_ms = int((time.perf_counter() - started) * 1000)
                self._count(model, "ok")
                return UpstreamResult(model, completion, latency_ms)
            self._count(model, "timeout" if rejected.timeout else "error")
            if delivered:
                raise StreamInterrupted(
                    f"The provider stopped midway through its answer ({rejected.detail})."
                ) from rejected
            if not rejected.retryable:
                raise UpstreamRejected(f"The AI provider refused the request: {rejected.detail}")
            self._metrics.fallbacks.labels(reason="error").inc()
            failures.append(f"{model.name} ({rejected.detail})")
            last_error = rejected
        raise self._exhausted(last_error, "; ".join(failures))

    async def _call_one(
        self,
        provider: Provider,
        upstream: UpstreamRequest,
        on_delta: Callable[[Delta], None] | None,
        delivered: list[Delta],
    ) -> Completion:
        if on_delta is None:
            return await provider.complete(upstream)
        async with aclosing(provider.stream(upstream)) as events:
            async for event in events:
                if isinstance(event, StreamEnd):
                    text, calls = _assemble(delivered)
                    return Completion(text, event.finish_reason, event.usage, calls)
                delivered.append(event)
                on_delta(event)
        raise ProviderError.unreachable("the provider's stream ended without its final event")

    def _count(self, model: ModelSpec, outcome: str) -> None:
        self._metrics.upstream_calls.labels(
            provider=model.provider, model=model.name, outcome=outcome
        ).inc()

    def _exhausted(self, last_error: ProviderError | None, failures: str) -> XynergyError:
        if last_error is None:
            return CircuitOpen(
                "Every candidate model's provider is failing; not calling them for now: "
                f"{failures}.",
                headers={"Retry-After": self._retry_after},
            )
        if last_error.timeout:
            return UpstreamTimeout(f"No candidate model answered in time: {failures}.")
        return UpstreamUnavailable(
            f"No candidate model could answer: {failures}.",
            headers={"Retry-After": "1"},
        )


def _assemble(deltas: list[Delta]) -> tuple[str, tuple[ToolCall, ...]]:
    """The text and the tool calls (in index order) a stream's deltas add up to."""
    text: list[str] = []
    calls: dict[int, tuple[str, str, list[str]]] = {}
    for delta in deltas:
        if isinstance(delta, TextDelta):
            text.append(delta.text)
            continue
        call_id, name, arguments = calls.get(delta.index, ("", "", []))
        arguments.append(delta.arguments)
        calls[delta.index] = (delta.id or call_id, delta.name or name, arguments)
    assembled = tuple(
        ToolCall(id=call_id, name=name, arguments="".join(arguments))
        for _, (call_id, name, arguments) in sorted(calls.items())
    )
    return "".join(text), assembled
