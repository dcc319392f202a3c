"""The SSE a streamed turn answers with: OpenAI-style chunks, then the stored turn.

    data: {"object": "chat.completion.chunk", "conversation_id": ..., "choices": [{"delta": ...}]}
    data: {"object": "assistant.tool", "type": "tool_call" | "tool_result" | "action_proposed", ...}
    ...
    data: {"object": "assistant.turn", "conversation_id": ..., "user_message": ..., "reply": ...,
           "usage": {...}}
    data: [DONE]

An error after the stream began is one ``data: {"error", "detail", "request_id"}``
event (the platform's error shape) and no ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from xynergy.ai_assistant.messages.rounds import ToolEvent
from xynergy.ai_assistant.messages.service import StreamItem, TurnOutcome
from xynergy.ai_assistant.messages.turns import DeltaSink
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.tracing import current_request_id

__all__ = ["turn_events"]

DONE = b"data: [DONE]\n\n"
HEARTBEAT = b": keep-alive\n\n"


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


def _chunk(stream_id: str, created: int, conversation_id: str, delta: dict[str, Any]) -> bytes:
    return _sse(
        {
            "id": stream_id,
            "object": "chat.completion.chunk",
            "created": created,
            "conversation_id": conversation_id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        }
    )


def _error(error: XynergyError) -> bytes:
    return _sse({"error": error.code, "detail": error.detail, "request_id": current_request_id()})


async def turn_events(
    *,
    conversation_id: str,
    stream_id: str,
    sink: DeltaSink[StreamItem],
    task: asyncio.Task[TurnOutcome],
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    """The stream of one turn; leaving it early detaches it and the reply is still stored."""
    created = int(time.time())
    try:
        yield _chunk(stream_id, created, conversation_id, {"role": "assistant", "content": ""})
        while True:
            try:
                item = await asyncio.wait_for(sink.queue.get(), heartbeat_seconds)
            except TimeoutError:
                if task.done() and sink.queue.empty():
                    # Ended without an outcome (cancelled at shutdown).
                    yield _error(XynergyError("The reply was interrupted."))
                    return
                yield HEARTBEAT
                continue
            if isinstance(item, str):
                yield _chunk(stream_id, created, conversation_id, {"content": item})
                continue
            if isinstance(item, ToolEvent):
                yield _sse(
                    {"object": "assistant.tool", "conversation_id": conversation_id, **item.payload}
                )
                continue
            if item.turn is None:
                yield _error(item.error or XynergyError("The reply failed."))
                return
            yield _sse({"object": "assistant.turn", **item.turn.model_dump(mode="json")})
            yield DONE
            return
    finally:
        sink.detach()
