"""OpenAI-compatible endpoints: the official ``openai`` SDK works against them unchanged."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import replace
from typing import get_args

from fastapi import Request, Response
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from xynergy.ai_routing.auth import AiCaller
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.gateway import AiEngine, cache_directives, caller_of, engine_of
from xynergy.ai_routing.generate.schemas import Task
from xynergy.ai_routing.openai_compat.errors import OPENAI_ERRORS
from xynergy.ai_routing.openai_compat.render import (
    completion_body,
    delta_chunk,
    error_event,
    final_chunks,
    tool_call_chunk,
)
from xynergy.ai_routing.openai_compat.schemas import ChatCompletionRequest
from xynergy.ai_routing.openai_compat.tools import chat_messages, tools_of
from xynergy.ai_routing.providers.base import ToolCallDelta
from xynergy.ai_routing.routing.request_memo import ParsedBody
from xynergy.ai_routing.routing.requests import Answer, ChatRequest, check_messages
from xynergy.ai_routing.routing.router import StreamItem
from xynergy.ai_routing.routing.upstream import UpstreamRejected
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import (
    BudgetExceeded,
    CircuitOpen,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
    ValidationFailed,
    XynergyError,
)
from xynergy.platform.logging import get_logger
from xynergy.platform.routing import (
    api_router,
    fast_path,
    idempotency_exempt,
    raises,
    rate_limit,
    shaped_errors,
)
from xynergy.platform.tracing import current_request_id

__all__ = ["TASK_HEADER", "router", "to_chat_request"]

log = get_logger(__name__)

router = api_router(prefix="/v1", tags=["openai-compatible"])

_JSON = "application/json"
_ENDPOINT = "chat.completions"
_STREAM_HEADERS = {"X-Accel-Buffering": "no"}
# A service calling /v1 for a key (an internal token) names the ledger task its
# spend is recorded under; a key's own call is always "chat": a client cannot
# relabel its spend.
TASK_HEADER = "X-Xynergy-Task"
_TASKS = frozenset(get_args(Task))


def _task_of(request: Request, auth: AuthContext) -> str:
    named = request.headers.get(TASK_HEADER)
    if named is None or auth.via != "internal":
        return "chat"
    if named not in _TASKS:
        raise ValidationFailed(f"{TASK_HEADER} must be one of {sorted(_TASKS)}.")
    return named


def to_chat_request(body: ChatCompletionRequest, ai: AiSettings) -> ChatRequest:
    """The normalised request, with the configured bounds applied (422/413 otherwise)."""
    max_tokens = body.max_completion_tokens or body.max_tokens or ai.max_tokens_default
    if max_tokens > ai.max_tokens_limit:
        raise ValidationFailed(f"max_tokens may be at most {ai.max_tokens_limit}.")
    stop = body.stop_sequences()
    if len(stop) > ai.stop_sequences_max or any(
        len(item) > ai.stop_sequence_max_chars for item in stop
    ):
        raise ValidationFailed(
            f"At most {ai.stop_sequences_max} stop sequences of "
            f"{ai.stop_sequence_max_chars} characters each are accepted."
        )
    return ChatRequest(
        messages=check_messages(chat_messages(body.messages), ai),
        max_tokens=max_tokens,
        model=body.model,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=stop,
        tools=tools_of(body, ai),
    )


async def fast_completion(request: Request) -> Response | None:
    """A whole (not streamed) completion, answered before FastAPI solves the
    endpoint's dependencies and validates its body.

    A body seen before comes parsed from the memo. A new one is validated from its
    bytes in one pass (pydantic-core's own JSON parser: no ``json.loads`` followed by
    a validation of the Python objects, no dependency solving): the gateway's hot
    path pays for its features, not for FastAPI's plumbing twice. Whatever this does
    not settle returns None for the endpoint to answer exactly as before: a stream,
    a body that is not declared JSON, a body that does not validate (the endpoint
    renders its 422 in OpenAI's shape).
    """
    engine = engine_of(request)
    raw = await request.body()
    auth: AuthContext = request.state.auth
    parsed = engine.requests.get(_ENDPOINT, raw)
    if parsed is None:
        if not _declares_json(request):
            return None
        try:
            body = ChatCompletionRequest.model_validate_json(raw)
        except ValidationError:
            return None
        if body.stream:
            return None
        chat = _remember(request, engine, raw, body, auth)
    elif parsed.stream:
        return None
    else:
        task = _task_of(request, auth)
        chat = parsed.chat if parsed.chat.task == task else replace(parsed.chat, task=task)
    directives = cache_directives(request)
    answer = await engine.router.complete(
        caller_of(request, auth), chat, lookup=directives.lookup, store=directives.store
    )
    return Response(completion_body(answer), media_type=_JSON)


def _declares_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0]
    return media_type.strip().lower() == _JSON


def _remember(
    request: Request, engine: AiEngine, raw: bytes, body: ChatCompletionRequest, auth: AuthContext
) -> ChatRequest:
    """The normalised request of ``body``, kept for the next identical body."""
    chat = replace(to_chat_request(body, engine.ai), task=_task_of(request, auth))
    engine.requests.remember(_ENDPOINT, raw, ParsedBody(chat, body.stream))
    return chat


@router.post("/chat/completions", responses={200: {"content": {"text/event-stream": {}}}})
@shaped_errors(OPENAI_ERRORS)
@rate_limit("ai_generate")
@fast_path(fast_completion)
@idempotency_exempt(
    "OpenAI-compatible surface: answers may stream, OpenAI clients send no Idempotency-Key, "
    "and the gateway's cache and in-flight dedup already answer repeats."
)
@raises(
    NotFound, UpstreamRejected, BudgetExceeded, UpstreamUnavailable, CircuitOpen, UpstreamTimeout
)
async def chat_completions(
    body: ChatCompletionRequest, request: Request, auth: AiCaller
) -> Response:
    """Create a chat completion (OpenAI-compatible; ``stream: true`` answers with SSE)."""
    engine = engine_of(request)
    chat = _remember(request, engine, await request.body(), body, auth)
    directives = cache_directives(request)
    caller = caller_of(request, auth)
    if not body.stream:
        answer = await engine.router.complete(
            caller, chat, lookup=directives.lookup, store=directives.store
        )
        return Response(completion_body(answer), media_type=_JSON)
    items = engine.router.stream(caller, chat, lookup=directives.lookup, store=directives.store)
    try:
        # Failures before the first byte (budget, breakers, bad model) are ordinary
        # error responses with their own status; after it, error events.
        first = await anext(items)
    except BaseException:
        await items.aclose()
        raise
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _events(first, items, body.model, include_usage),
        media_type="text/event-stream",
        headers=_STREAM_HEADERS,
    )


async def _events(
    first: StreamItem, items: AsyncGenerator[StreamItem, None], model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    # One id and creation time for every chunk of this response (the answer's own
    # id is known only at the end when it streams live).
    stream_id = "chatcmpl-" + (first.id if isinstance(first, Answer) else secrets.token_hex(12))
    created = first.created if isinstance(first, Answer) else int(time.time())
    sent = False
    async with aclosing(items):
        try:
            item: StreamItem | None = first
            while item is not None:
                if isinstance(item, Answer):
                    if not sent:
                        # A cached or shared answer: replayed whole, in one chunk per part.
                        for chunk in _replay(stream_id, created, model, item):
                            yield chunk
                    yield final_chunks(stream_id, created, item, include_usage=include_usage)
                    return
                if isinstance(item, ToolCallDelta):
                    yield tool_call_chunk(stream_id, created, model, item, first=not sent)
                else:
                    yield delta_chunk(stream_id, created, model, item.text, first=not sent)
                sent = True
                item = await anext(items, None)
        except XynergyError as exc:
            yield _error_event(exc)
        except Exception:
            log.exception("ai.stream_failed")
            # The base error: a 500 internal_error, as it would have been before the stream.
            yield _error_event(XynergyError("The stream failed."))


def _replay(stream_id: str, created: int, model: str, answer: Answer) -> list[bytes]:
    chunks = []
    if answer.text:
        chunks.append(delta_chunk(stream_id, created, model, answer.text, first=True))
    for index, call in enumerate(answer.tool_calls):
        delta = ToolCallDelta(index, call.id, call.name, call.arguments)
        chunks.append(tool_call_chunk(stream_id, created, model, delta, first=not chunks))
    return chunks


def _error_event(exc: XynergyError) -> bytes:
    return error_event(exc.status_code, exc.code, exc.detail, current_request_id())


@router.get("/models")
@shaped_errors(OPENAI_ERRORS)
async def list_models(request: Request, auth: AiCaller) -> Response:
    """The catalogue's models (OpenAI ``models.list`` shape)."""
    engine = engine_of(request)
    return Response(engine.models_body, media_type=_JSON)
