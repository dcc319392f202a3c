"""The gateway's request path: cache first, then share, then budget, then call.

Order matters and is the point of this module (invariant 10):

1. the exact-match cache is looked up before any other work: a hit costs no
   token estimate, no budget check and no upstream call;
2. the tokens-per-minute limit of the calling key;
3. identical concurrent requests of one tenant join one in-flight call: in this
   process first, then (with Redis) across replicas (``shared_flight``);
4. only the request that starts a call reserves its maximum cost against the
   budgets, and settles the real cost (or releases it) when the call ends;
5. the answer is stored for the next caller, and one usage event per request
   goes to the ledger, off the request path.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from limits import parse as parse_limit

from xynergy.ai_routing.catalogue import ModelSpec
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.lineup import Lineup, LiveLineup
from xynergy.ai_routing.providers.base import TextDelta, ToolCallDelta
from xynergy.ai_routing.providers.tokens import max_input_tokens, prompt_text
from xynergy.ai_routing.routing.candidates import choose_candidates
from xynergy.ai_routing.routing.metrics import AiMetrics
from xynergy.ai_routing.routing.requests import Answer, CachePolicy, ChatRequest
from xynergy.ai_routing.routing.shared_flight import SharedFlights
from xynergy.ai_routing.routing.singleflight import Flight, SingleFlight
from xynergy.ai_routing.routing.upstream import Delta, UpstreamCaller, UpstreamResult, delta_text
from xynergy.ai_routing.usage.events import UsageEvent
from xynergy.platform.cache import PlatformCache
from xynergy.platform.logging import get_logger
from xynergy.platform.rate_limit import RateLimiter
from xynergy.platform.tokens import approximate_tokens

__all__ = ["AiRouter", "Caller", "StreamItem"]

log = get_logger(__name__)

CACHE_NAMESPACE = "ai"
TOKENS_NAMESPACE = "ai_tokens"
StreamItem = TextDelta | ToolCallDelta | Answer


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: usage and budgets are kept per tenant and key."""

    tenant_id: str
    key_id: str | None
    request_id: str
    service: str


def _new_id() -> str:
    return "gen-" + secrets.token_hex(12)


class AiRouter:
    """Answers ChatRequests for callers; one per running AI Routing Engine."""

    def __init__(
        self,
        *,
        ai: AiSettings,
        lineup: LiveLineup,
        upstream: UpstreamCaller,
        cache: PlatformCache,
        ledger: Any,
        budgets: Any,
        limiter: RateLimiter,
        metrics: AiMetrics,
        shared_flights: SharedFlights | None = None,
    ) -> None:
        self._ai = ai
        self._lineup = lineup
        self._upstream = upstream
        self._cache = cache
        self._ledger = ledger
        self._budgets = budgets
        self._limiter = limiter
        self._metrics = metrics
        self._shared_flights = shared_flights
        self._policy = CachePolicy(ai)
        self._tokens_per_minute = parse_limit(ai.tokens_per_minute)
        self._flights: SingleFlight[StreamItem] = SingleFlight(
            max_entries=ai.singleflight_max_entries, max_items=ai.stream_buffer_max_events
        )

    @property
    def metrics(self) -> AiMetrics:
        """The gateway's own metrics."""
        return self._metrics

    @property
    def inflight(self) -> int:
        """Shared calls running now."""
        return len(self._flights)

    @property
    def shared_flights(self) -> SharedFlights | None:
        """The cross-replica layer of in-flight dedup (None without Redis)."""
        return self._shared_flights

    async def close(self) -> None:
        """Cancel calls still running (shutdown)."""
        await self._flights.close()
        if self._shared_flights is not None:
            await self._shared_flights.close()

    async def complete(
        self, caller: Caller, request: ChatRequest, *, lookup: bool = True, store: bool = True
    ) -> Answer:
        """The whole answer."""
        answer: Answer | None = None
        async for item in self.stream(caller, request, lookup=lookup, store=store, deltas=False):
            if isinstance(item, Answer):
                answer = item
        if answer is None:  # a flight always ends with its answer or an error
            raise RuntimeError("the shared call ended without an answer")
        return answer

    async def stream(
        self,
        caller: Caller,
        request: ChatRequest,
        *,
        lookup: bool = True,
        store: bool = True,
        deltas: bool = True,
    ) -> AsyncGenerator[StreamItem, None]:
        """Deltas (if ``deltas``), then the Answer; raises a XynergyError on failure.

        ``lookup=False`` skips the cache lookup (``Cache-Control: no-cache``) but
        still shares an identical call in flight; ``store=False`` keeps the answer
        out of the cache (``no-store``).
        """
        started = time.perf_counter()
        parts = request.fingerprint()
        # The cache key of these parts, digested once for the lookup and the flight.
        entry = self._cache.key(CACHE_NAMESPACE, caller.tenant_id, parts)
        if lookup:
            answer = await self.cached(caller, request, parts=parts, entry=entry, started=started)
            if answer is not None:
                yield answer
                return
        # One snapshot per request: candidates and their providers (keys) agree.
        lineup = self._lineup.current
        candidates = choose_candidates(lineup.catalogue, request, self._ai.max_attempts)
        await self._limiter.consume(
            self._tokens_per_minute,
            TOKENS_NAMESPACE,
            "key:" + (caller.key_id or caller.tenant_id),
            service=caller.service,
            cost=approximate_tokens(prompt_text(request.messages, request.tools))
            + request.max_tokens,
        )
        key = f"{caller.tenant_id}:{entry}"

        async def produce(flight: Flight[StreamItem]) -> None:
            async def call() -> Answer:
                return await self._produce(
                    flight, caller, request, lineup, candidates, parts, store, deltas
                )

            if self._shared_flights is None:
                await call()
                return
            # The answer of another replica's call, or None when this one called.
            shared = await self._shared_flights.run(
                self._shared_flights.name(key, caller.tenant_id), call
            )
            if shared is not None:
                flight.push(shared)

        flight, joined = self._flights.join(key, produce)
        if joined:
            self._metrics.deduplicated.inc()
            self._metrics.dedup_hits.labels(scope="local").inc()
        async for item in flight.follow():
            if isinstance(item, Answer):
                # Joined here, or the flight carried another replica's answer.
                if joined or item.deduplicated:
                    item = replace(item, id=_new_id(), deduplicated=True, cost_nanos=0)
                    item.latency_ms = int((time.perf_counter() - started) * 1000)
                    self._record(caller, request, item, billed=False)
                yield item
            elif deltas:
                yield item

    async def cached(
        self,
        caller: Caller,
        request: ChatRequest,
        *,
        parts: list[object] | None = None,
        entry: str | None = None,
        started: float | None = None,
        count_miss: bool = True,
    ) -> Answer | None:
        """The cached answer (recorded as a cache hit in the ledger), or None.
        ``entry``: the cache key of ``parts``, when the caller has it already."""
        if not self._ai.cache_enabled:
            return None
        started = time.perf_counter() if started is None else started
        cached = await self._cache.lookup_json(
            CACHE_NAMESPACE,
            caller.tenant_id,
            request.fingerprint() if parts is None else parts,
            count_miss=count_miss,
            key=entry,
        )
        if cached is None:
            return None
        answer = Answer.from_cache_json(cached)
        answer.id = _new_id()
        answer.cost_nanos = 0  # this request paid nothing
        answer.latency_ms = int((time.perf_counter() - started) * 1000)
        self._record(caller, request, answer, billed=False)
        return answer

    async def _produce(
        self,
        flight: Flight[StreamItem],
        caller: Caller,
        request: ChatRequest,
        lineup: Lineup,
        candidates: list[ModelSpec],
        parts: list[object],
        store: bool,
        stream: bool,
    ) -> Answer:
        input_bound = max_input_tokens(request.messages, request.tools)
        max_cost = max(model.cost_nanos(input_bound, request.max_tokens) for model in candidates)
        reservation = await self._budgets.reserve(
            tenant_id=caller.tenant_id, key_id=caller.key_id, max_cost_nanos=max_cost
        )
        delivered: list[str] = []

        def on_delta(delta: Delta) -> None:
            delivered.append(delta_text(delta))
            flight.push(delta)

        try:
            result = await self._upstream.call(
                request,
                candidates,
                providers=lineup.providers,
                request_id=caller.request_id,
                on_delta=on_delta if stream else None,
            )
        except BaseException:
            failed = self._fail(caller, request, candidates[0], reservation, delivered)
            await asyncio.shield(asyncio.create_task(failed, name="ai-settle-failure"))
            raise
        answer = self._answer(result)
        await self._budgets.settle(reservation, answer.cost_nanos)
        self._record(caller, request, answer, billed=True)
        if store and self._ai.cache_enabled:
            await self._cache.store_json(
                CACHE_NAMESPACE,
                caller.tenant_id,
                parts,
                answer.to_cache_json(),
                ttl=self._policy.ttl(request),
            )
        flight.push(answer)
        return answer

    def _answer(self, result: UpstreamResult) -> Answer:
        usage = result.completion.usage
        model = result.model
        cost = model.cost_nanos(usage.input_tokens, usage.output_tokens)
        self._metrics.tokens.labels(model=model.name, direction="input").inc(usage.input_tokens)
        self._metrics.tokens.labels(model=model.name, direction="output").inc(usage.output_tokens)
        self._metrics.cost_usd.labels(model=model.name).inc(cost / 1e9)
        return Answer(
            id=_new_id(),
            text=result.completion.text,
            finish_reason=result.completion.finish_reason,
            model=model.name,
            provider=model.provider,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cost_nanos=cost,
            created=int(time.time()),
            latency_ms=result.latency_ms,
            tool_calls=result.completion.tool_calls,
        )

    async def _fail(
        self,
        caller: Caller,
        request: ChatRequest,
        model: ModelSpec,
        reservation: Any,
        delivered: list[str],
    ) -> None:
        """Give the reservation back; a stream cut midway is billed by estimate."""
        if delivered:
            # The provider bills what it sent; it never told us how much.
            input_tokens = approximate_tokens(prompt_text(request.messages, request.tools))
            output_tokens = approximate_tokens("".join(delivered))
            cost = model.cost_nanos(input_tokens, output_tokens)
            await self._budgets.settle(reservation, cost)
        else:
            input_tokens = output_tokens = cost = 0
            await self._budgets.release(reservation)
        self._ledger.record(
            UsageEvent(
                tenant_id=caller.tenant_id,
                key_id=caller.key_id,
                request_id=caller.request_id,
                task=request.task,
                model=model.name,
                provider=model.provider,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_nanos=cost,
                cache_hit=False,
                deduplicated=False,
                latency_ms=0,
                status="error",
                occurred_at=datetime.now(UTC),
            )
        )

    def _record(
        self, caller: Caller, request: ChatRequest, answer: Answer, *, billed: bool
    ) -> None:
        """One usage event; only the call that reached the provider carries tokens and
        cost. Cache hits and joined calls are recorded at zero, with what they saved."""
        self._ledger.record(
            UsageEvent(
                tenant_id=caller.tenant_id,
                key_id=caller.key_id,
                request_id=caller.request_id,
                task=request.task,
                model=answer.model,
                provider=answer.provider,
                input_tokens=answer.input_tokens if billed else 0,
                output_tokens=answer.output_tokens if billed else 0,
                cost_nanos=answer.cost_nanos,
                cache_hit=answer.cached,
                deduplicated=answer.deduplicated,
                latency_ms=answer.latency_ms,
                status="ok",
                occurred_at=datetime.now(UTC),
                saved_nanos=0 if billed else self._saved_nanos(answer),
            )
        )

    def _saved_nanos(self, answer: Answer) -> int:
        """What ``answer`` would cost now at its model's catalogue price (the tokens
        are the original call's); 0 when a reload removed the model: a saving that
        cannot be priced is not claimed."""
        model = self._lineup.current.catalogue.model(answer.model)
        return 0 if model is None else model.cost_nanos(answer.input_tokens, answer.output_tokens)
