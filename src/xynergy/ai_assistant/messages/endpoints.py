"""Message endpoints: send a message, get the reply as JSON or as a stream."""

from __future__ import annotations

import asyncio
import secrets

from fastapi import Response
from fastapi.responses import StreamingResponse

from xynergy.ai_assistant.ai_client import AiRefused
from xynergy.ai_assistant.auth import Talker
from xynergy.ai_assistant.dependencies import AssistantDep, PlatformDep, TurnsDep
from xynergy.ai_assistant.messages import service
from xynergy.ai_assistant.messages.events import turn_events
from xynergy.ai_assistant.messages.turns import DeltaSink, TurnRunner
from xynergy.ai_assistant.schemas import ConversationMessageSend, MessageSend, TurnOut
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import (
    BudgetExceeded,
    CircuitOpen,
    Conflict,
    NotFound,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from xynergy.platform.routing import api_router, idempotency_exempt, raises, rate_limit
from xynergy.platform.runtime import Platform
from xynergy.platform.schemas import ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["messages"])

_STREAM_HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}
_EXEMPT = (
    "A turn may stream, and every turn is stored as it happens: a repeat is a new turn "
    "the user sees in the history, not a hidden duplicate write."
)
_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/event-stream": {}}},
    409: {"description": "A bound is reached (messages per conversation, conversations per key)."},
}
_ERRORS = (
    NotFound,
    Conflict,
    AiRefused,
    BudgetExceeded,
    UpstreamUnavailable,
    CircuitOpen,
    UpstreamTimeout,
)


async def _answer(
    platform: Platform,
    assistant: AssistantDep,
    turns: TurnRunner,
    caller: AuthContext,
    conversation_id: str | None,
    body: ConversationMessageSend,
) -> Response | TurnOut:
    slot = turns.claim()  # before anything is written: a full process writes nothing
    try:
        turn = await service.begin_turn(
            platform,
            assistant,
            caller=caller,
            conversation_id=conversation_id,
            text=body.message,
            model=body.model,
        )
    except BaseException:
        slot.release()
        raise
    sink: DeltaSink[service.StreamItem] | None = (
        DeltaSink(assistant.stream_queue_size) if body.stream else None
    )
    task = turns.start(
        slot,
        service.run_turn(turn, sink, replies=turns.replies),
        name=f"assistant-turn:{turn.conversation_id}",
    )
    if sink is None:
        # Shielded: a client that goes away cancels this request, not the reply.
        outcome = await asyncio.shield(task)
        if outcome.turn is None:
            raise outcome.error or UpstreamUnavailable("The reply failed.")
        return outcome.turn
    return StreamingResponse(
        turn_events(
            conversation_id=turn.conversation_id,
            stream_id="chatcmpl-" + secrets.token_hex(12),
            sink=sink,
            task=task,
            heartbeat_seconds=assistant.stream_heartbeat_seconds,
        ),
        media_type="text/event-stream",
        headers=_STREAM_HEADERS,
    )


@router.post("/conversation/message", responses=_RESPONSES)
@rate_limit("ai_generate")
@idempotency_exempt(_EXEMPT)
@raises(*_ERRORS)
async def send_message(
    body: MessageSend,
    auth: Talker,
    platform: PlatformDep,
    assistant: AssistantDep,
    turns: TurnsDep,
) -> TurnOut:
    """Send a message (to a new conversation unless one is named) and get the reply."""
    answer = await _answer(platform, assistant, turns, auth, body.conversation_id, body)
    return answer  # type: ignore[return-value]  # a StreamingResponse passes through as is


@router.post("/conversations/{conversation_id}/messages", responses=_RESPONSES)
@rate_limit("ai_generate")
@idempotency_exempt(_EXEMPT)
@raises(*_ERRORS)
async def send_conversation_message(
    conversation_id: ResourceId,
    body: ConversationMessageSend,
    auth: Talker,
    platform: PlatformDep,
    assistant: AssistantDep,
    turns: TurnsDep,
) -> TurnOut:
    """Send a message to a conversation and get the reply (JSON, or SSE with stream)."""
    answer = await _answer(platform, assistant, turns, auth, conversation_id, body)
    return answer  # type: ignore[return-value]  # a StreamingResponse passes through as is
