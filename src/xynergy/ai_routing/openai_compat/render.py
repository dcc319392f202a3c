"""OpenAI wire shapes: ``chat.completion``, ``chat.completion.chunk`` and SSE framing.

Every answer also carries ``provider`` and an ``xynergy`` object (cached,
deduplicated, cost), which OpenAI clients ignore and our users can read.
"""

from __future__ import annotations

import json
from typing import Any

from xynergy.ai_routing.openai_compat.errors import openai_error
from xynergy.ai_routing.providers.base import ToolCallDelta
from xynergy.ai_routing.routing.requests import Answer

__all__ = [
    "completion_body",
    "delta_chunk",
    "error_event",
    "final_chunks",
    "sse",
    "tool_call_chunk",
]

DONE = b"data: [DONE]\n\n"
_NANOS_PER_USD = 1_000_000_000


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def cost_usd(nanos: int) -> str:
    """Nano-dollars as an exact decimal string."""
    whole, fraction = divmod(nanos, _NANOS_PER_USD)
    return f"{whole}.{fraction:09d}"


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def _extension(answer: Answer) -> dict[str, Any]:
    return {
        "cached": answer.cached,
        "deduplicated": answer.deduplicated,
        "cost_usd": cost_usd(answer.cost_nanos),
    }


def _message(answer: Answer) -> dict[str, Any]:
    if not answer.tool_calls:
        return {"role": "assistant", "content": answer.text}
    return {
        "role": "assistant",
        # OpenAI's shape for a turn that only calls tools.
        "content": answer.text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in answer.tool_calls
        ],
    }


def completion_body(answer: Answer) -> bytes:
    """A non-streamed ``chat.completion``."""
    return _dumps(
        {
            "id": answer.id,
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "provider": answer.provider,
            "choices": [
                {
                    "index": 0,
                    "message": _message(answer),
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": _usage(answer),
            "xynergy": _extension(answer),
        }
    ).encode()


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {_dumps(payload)}\n\n".encode()


def _chunk(
    stream_id: str, created: int, model: str, choices: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "id": stream_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }


def delta_chunk(stream_id: str, created: int, model: str, text: str, *, first: bool) -> bytes:
    delta: dict[str, Any] = {"content": text}
    if first:
        delta["role"] = "assistant"
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return sse(_chunk(stream_id, created, model, [choice]))


def tool_call_chunk(
    stream_id: str, created: int, model: str, delta: ToolCallDelta, *, first: bool
) -> bytes:
    """A piece of a tool call: id, type and name come with its first piece only."""
    call: dict[str, Any] = {"index": delta.index}
    function: dict[str, str] = {}
    if delta.id is not None:
        call["id"] = delta.id
        call["type"] = "function"
    if delta.name is not None:
        function["name"] = delta.name
    function["arguments"] = delta.arguments
    call["function"] = function
    message: dict[str, Any] = {"tool_calls": [call]}
    if first:
        message["role"] = "assistant"
        message["content"] = None
    choice = {"index": 0, "delta": message, "finish_reason": None}
    return sse(_chunk(stream_id, created, model, [choice]))


def final_chunks(stream_id: str, created: int, answer: Answer, *, include_usage: bool) -> bytes:
    """The closing chunk (finish_reason; the model that answered), the usage chunk if
    asked, and ``[DONE]``."""
    closing = _chunk(
        stream_id,
        created,
        answer.model,
        [{"index": 0, "delta": {}, "finish_reason": answer.finish_reason}],
    )
    closing["provider"] = answer.provider
    closing["xynergy"] = _extension(answer)
    body = sse(closing)
    if include_usage:
        usage = _chunk(stream_id, created, answer.model, [])
        usage["usage"] = _usage(answer)
        body += sse(usage)
    return body + DONE


def error_event(status: int, code: str, detail: str, request_id: str | None) -> bytes:
    """An error in the stream, in the shape of the error responses (``status`` is the
    one it would have had before the stream began): the OpenAI SDK raises it as an
    ``APIError`` with its message and code; no ``[DONE]`` follows."""
    return sse(openai_error(status, code, detail, request_id))
