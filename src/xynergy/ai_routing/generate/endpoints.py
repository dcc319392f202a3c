"""The platform's AI request: a task, a prompt and a quality/cost preference."""

from __future__ import annotations

import json

from fastapi import Request, Response

from xynergy.ai_routing.auth import AiCaller
from xynergy.ai_routing.gateway import cache_directives, caller_of, engine_of
from xynergy.ai_routing.generate.schemas import GenerateRequest, GenerateResponse
from xynergy.ai_routing.openai_compat.render import cost_usd
from xynergy.ai_routing.routing.request_memo import ParsedBody
from xynergy.ai_routing.routing.requests import Answer, ChatRequest, normalise_messages
from xynergy.ai_routing.routing.upstream import UpstreamRejected
from xynergy.platform.exceptions import (
    BudgetExceeded,
    CircuitOpen,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
)
from xynergy.platform.routing import api_router, fast_path, raises, rate_limit

__all__ = ["router"]

router = api_router(prefix="/api", tags=["generate"])

_ENDPOINT = "generate.intelligent"


def _answer_body(answer: Answer, task: str) -> Response:
    # Built directly: the shape is GenerateResponse (documented on the route), and
    # a second validation of what we just built would cost every request.
    payload = {
        "id": answer.id,
        "task": task,
        "text": answer.text,
        "model": answer.model,
        "provider": answer.provider,
        "finish_reason": answer.finish_reason,
        "usage": {
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cost_usd": cost_usd(answer.cost_nanos),
        },
        "cached": answer.cached,
        "deduplicated": answer.deduplicated,
        "latency_ms": answer.latency_ms,
    }
    return Response(
        json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
        media_type="application/json",
    )


async def cached_generation(request: Request) -> Response | None:
    """A cache hit for a body seen before, answered without parsing it again."""
    engine = engine_of(request)
    parsed = engine.requests.get(_ENDPOINT, await request.body())
    if parsed is None or not cache_directives(request).lookup:
        return None
    caller = caller_of(request, request.state.auth)
    answer = await engine.router.cached(caller, parsed.chat, count_miss=False)
    return None if answer is None else _answer_body(answer, parsed.chat.task)


@router.post("/generate/intelligent", response_model=GenerateResponse)
@rate_limit("ai_generate")
@fast_path(cached_generation)
@raises(
    NotFound, UpstreamRejected, BudgetExceeded, UpstreamUnavailable, CircuitOpen, UpstreamTimeout
)
async def generate(body: GenerateRequest, request: Request, auth: AiCaller) -> Response:
    """Generate text for a task, routed by preference (quality, balanced or cost)."""
    engine = engine_of(request)
    ai = engine.ai
    max_tokens = body.max_tokens or ai.max_tokens_default
    if max_tokens > ai.max_tokens_limit:
        raise ValidationFailed(f"max_tokens may be at most {ai.max_tokens_limit}.")
    chat = ChatRequest(
        messages=normalise_messages(body.as_pairs(), ai),
        max_tokens=max_tokens,
        task=body.task,
        model=body.model,
        preference=body.preference,
        temperature=body.temperature,
    )
    engine.requests.remember(_ENDPOINT, await request.body(), ParsedBody(chat, stream=False))
    directives = cache_directives(request)
    answer = await engine.router.complete(
        caller_of(request, auth), chat, lookup=directives.lookup, store=directives.store
    )
    return _answer_body(answer, body.task)
