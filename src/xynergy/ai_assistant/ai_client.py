"""Model calls through the AI Routing Engine, on the caller's behalf.

Replies use its OpenAI-compatible ``/v1/chat/completions`` (streamed or not, with
the assistant's tools when offered; the ledger records them under the
``assistant`` task, named by the task header internal calls may send), summaries its
``/api/generate/intelligent`` under their own task, ``assistant-summary``, so the
ledger tells what summaries cost apart from what turns cost (the engine's answer
cache serves a repeated summary: the task is not part of its key). Every call carries the caller's key identity with
the ``ai:generate`` scope only: the assistant can spend no more than the key can.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import UpstreamUnavailable, XynergyError
from xynergy.platform.services import ServiceClient, ServiceResponse

__all__ = [
    "AI_ENGINE",
    "SUMMARY_TASK",
    "TASK",
    "AiRefused",
    "ChatMessages",
    "Reply",
    "complete",
    "list_models",
    "stream",
    "summarise",
]

AI_ENGINE = "ai-routing-engine"
_CHAT = "/v1/chat/completions"
_MODELS = "/v1/models"
_GENERATE = "/api/generate/intelligent"
_SCOPES = ("ai:generate",)
TASK = "assistant"
SUMMARY_TASK = "assistant-summary"
# The AI Routing Engine's header naming the ledger task of an internal /v1 call.
_TASK_HEADERS = {"X-Xynergy-Task": TASK}
# Plain (role, content) pairs, or OpenAI messages (tool calls and results).
ChatMessages = Sequence[tuple[str, str] | dict[str, Any]]
_FIRST_ERROR = 400
_RELAYED_HEADERS = frozenset(
    {"retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "ratelimit-policy"}
)
_FIRST_SERVER_ERROR = 500
# An SSE event of the engine is a chunk of JSON; anything longer is not one.
_EVENT_MAX_BYTES = 1_048_576
# Tool calls one streamed answer may hold; the engine sends far fewer.
_STREAM_CALLS_MAX = 128


class AiRefused(XynergyError):
    """The AI Routing Engine refused the call (4xx); its status, code and detail are kept."""

    def __init__(
        self, status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail, headers=headers)
        self.status_code = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Reply:
    """A finished model answer and what it cost."""

    text: str
    model: str
    provider: str
    finish_reason: str
    input_tokens: int
    output_tokens: int
    cost_usd: str
    # OpenAI-shaped tool calls the model asked for ({"id", "type", "function"}).
    tool_calls: tuple[dict[str, Any], ...] = ()


def _answer(response: ServiceResponse) -> Any:
    """The engine's JSON answer; its refusal (or a body that is not JSON) raised."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status >= _FIRST_ERROR:
        raise _refusal(response.status, body, response.headers)
    return body


def _refusal(status: int, body: Any, headers: Mapping[str, str] | None = None) -> XynergyError:
    if status >= _FIRST_SERVER_ERROR:
        return UpstreamUnavailable(f"The AI Routing Engine failed ({status}).")
    # A 429's Retry-After and RateLimit-* say when the caller may try again: they
    # are the engine's answer to this caller, so the caller gets them too.
    relayed = {
        name: value for name, value in (headers or {}).items() if name.lower() in _RELAYED_HEADERS
    }
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):  # OpenAI's shape, under /v1
        code, detail = str(error.get("code") or "ai_refused"), str(error.get("message"))
    elif isinstance(error, str):
        code, detail = error, str(body.get("detail"))
    else:
        code, detail = "ai_refused", "The AI Routing Engine refused the call."
    return AiRefused(status, code, detail, relayed)


def _chat_body(
    model: str, messages: ChatMessages, max_tokens: int, tools: Sequence[dict[str, Any]] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model,
        "messages": [
            item if isinstance(item, dict) else {"role": item[0], "content": item[1]}
            for item in messages
        ],
        "max_tokens": max_tokens,
    }
    if tools:
        body["tools"] = list(tools)
    return body


async def complete(
    services: ServiceClient,
    *,
    caller: AuthContext,
    model: str,
    messages: ChatMessages,
    max_tokens: int,
    tools: Sequence[dict[str, Any]] | None = None,
) -> Reply:
    """One reply, not streamed."""
    response = await services.request(
        AI_ENGINE,
        "POST",
        _CHAT,
        caller=caller,
        scopes=_SCOPES,
        json=_chat_body(model, messages, max_tokens, tools),
        headers=_TASK_HEADERS,
    )
    body = _answer(response)
    choice = body["choices"][0]
    return Reply(
        text=choice["message"]["content"] or "",
        model=body["model"],
        provider=body.get("provider", ""),
        finish_reason=choice.get("finish_reason") or "stop",
        input_tokens=body["usage"]["prompt_tokens"],
        output_tokens=body["usage"]["completion_tokens"],
        cost_usd=body.get("xynergy", {}).get("cost_usd", "0"),
        tool_calls=tuple(choice["message"].get("tool_calls") or ()),
    )


async def stream(
    services: ServiceClient,
    *,
    caller: AuthContext,
    model: str,
    messages: ChatMessages,
    max_tokens: int,
    on_delta: Callable[[str], Awaitable[None]],
    tools: Sequence[dict[str, Any]] | None = None,
) -> Reply:
    """One reply, streamed: ``on_delta`` gets each piece of text as it arrives."""
    body = _chat_body(model, messages, max_tokens, tools) | {
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with services.stream(
        AI_ENGINE, "POST", _CHAT, caller=caller, scopes=_SCOPES, json=body, headers=_TASK_HEADERS
    ) as opened:
        if opened.status >= _FIRST_ERROR:
            raw = await opened.read()
            try:
                error_body = json.loads(raw)
            except ValueError:
                error_body = None
            raise _refusal(opened.status, error_body, opened.headers)
        return await _read_events(opened.chunks, on_delta)


async def _read_events(
    chunks: AsyncIterator[bytes], on_delta: Callable[[str], Awaitable[None]]
) -> Reply:
    text: list[str] = []
    closing: dict[str, Any] = {}
    usage: dict[str, Any] = {}
    calls: dict[int, dict[str, Any]] = {}
    async for data in _sse_data(chunks):
        if data == "[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            raise _refusal(_FIRST_ERROR, event)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices", ()):
            piece = choice.get("delta", {}).get("content")
            if piece:
                text.append(piece)
                await on_delta(piece)
            for delta in choice.get("delta", {}).get("tool_calls") or ():
                _add_call_delta(calls, delta)
            if choice.get("finish_reason"):
                closing = event
    if not closing:
        raise UpstreamUnavailable("The AI Routing Engine's stream ended before the answer did.")
    return Reply(
        text="".join(text),
        model=closing.get("model", ""),
        provider=closing.get("provider", ""),
        finish_reason=closing["choices"][0]["finish_reason"],
        input_tokens=int(usage.get("prompt_tokens", 0)),
        output_tokens=int(usage.get("completion_tokens", 0)),
        cost_usd=closing.get("xynergy", {}).get("cost_usd", "0"),
        tool_calls=tuple(calls[index] for index in sorted(calls)),
    )


def _add_call_delta(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Fold one streamed tool-call delta (OpenAI's: by index, arguments in pieces)."""
    index = int(delta.get("index", 0))
    if index not in calls and len(calls) >= _STREAM_CALLS_MAX:
        raise UpstreamUnavailable("The AI Routing Engine sent more tool calls than allowed.")
    call = calls.setdefault(
        index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if delta.get("id"):
        call["id"] = delta["id"]
    function = delta.get("function") or {}
    if function.get("name"):
        call["function"]["name"] = function["name"]
    if function.get("arguments"):
        call["function"]["arguments"] += function["arguments"]


async def _sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The ``data:`` payloads of an SSE body, one per event."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        while b"\n\n" in buffer:
            event, buffer = buffer.split(b"\n\n", 1)
            lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
            if lines:
                yield b"\n".join(lines).decode()
        if len(buffer) > _EVENT_MAX_BYTES:
            raise UpstreamUnavailable("The AI Routing Engine sent an event larger than allowed.")


async def summarise(
    services: ServiceClient,
    *,
    caller: AuthContext,
    model: str,
    instruction: str,
    transcript: str,
    max_tokens: int,
) -> Reply:
    """A summary of ``transcript`` (task ``assistant-summary``; the engine caches the answer)."""
    response = await services.request(
        AI_ENGINE,
        "POST",
        _GENERATE,
        caller=caller,
        scopes=_SCOPES,
        json={
            "task": SUMMARY_TASK,
            "model": model,
            "max_tokens": max_tokens,
            "messages": [
                {"role": "system", "content": instruction},
                {"role": "user", "content": transcript},
            ],
        },
    )
    body = _answer(response)
    return Reply(
        text=body["text"],
        model=body["model"],
        provider=body["provider"],
        finish_reason=body["finish_reason"],
        input_tokens=body["usage"]["input_tokens"],
        output_tokens=body["usage"]["output_tokens"],
        cost_usd=body["usage"]["cost_usd"],
    )


async def list_models(services: ServiceClient, *, caller: AuthContext) -> list[dict[str, Any]]:
    """The engine's catalogue (``GET /v1/models``): each entry's ``id`` and, where the
    engine says, ``context_window`` and ``pricing``."""
    response = await services.request(AI_ENGINE, "GET", _MODELS, caller=caller, scopes=_SCOPES)
    body = _answer(response)
    data = body.get("data") if isinstance(body, dict) else None
    return [entry for entry in data or () if isinstance(entry, dict)]
