"""The platform's AI request: a task, a prompt and a quality/cost preference."""

from __future__ import annotations

import json

from fastapi import Request, Response

from xynergy.ai_routing.auth import AiCaller
from xynergy.ai_routing.gateway import cache_directives, caller_of, engine_of
from xynergy.ai_routing.generate.schemas import GenerateRequest, GenerateResponse
from xynergy.ai_routing.openai_compat.render import cost_usd
from xynergy.ai_routing.routing.requests import ChatRequest, normalise_messages
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform.routing import api_router, rate_limit

__all__ = ["router"]

router = api_router(prefix="/api", tags=["generate"])


@router.post("/generate/intelligent", response_model=GenerateResponse)
@rate_limit("ai_generate")
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
    directives = cache_directives(request)
    answer = await engine.router.complete(
        caller_of(request, auth), chat, lookup=directives.lookup, store=directives.store
    )
    # Built directly: the shape is GenerateResponse (documented above), and a second
    # validation of what we just built would cost every request.
    payload = {
        "id": answer.id,
        "task": body.task,
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
