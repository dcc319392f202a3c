"""One turn: the user message stored, the reply generated in its own task, then stored.

``begin_turn`` writes the user message (and a new conversation if asked) in one
unit of work, after every bound is checked, so a refused turn writes nothing.
``run_turn`` (in a :class:`TurnRunner` task) builds the context, calls the model
through the AI Routing Engine and stores the reply, or a failed reply saying
why; it returns instead of raising so the outcome is stored whoever listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import ContextCache
from xynergy.ai_assistant.context.service import TurnContext, build_window, check_window, sized
from xynergy.ai_assistant.context.tokens import prompt_tokens
from xynergy.ai_assistant.context.window import Turn, Window
from xynergy.ai_assistant.conversations.service import (
    message_out,
    new_conversation,
    owned_conversation,
)
from xynergy.ai_assistant.messages.group_write import GroupWriter
from xynergy.ai_assistant.messages.rounds import Conversed, ToolEvent, converse, plan_tools
from xynergy.ai_assistant.messages.turns import DeltaSink
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.schemas import MessageOut, TurnOut, Usage
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Conflict, ValidationFailed, XynergyError
from xynergy.platform.logging import get_logger
from xynergy.platform.runtime import Platform

__all__ = ["StreamItem", "TurnOutcome", "begin_turn", "run_turn"]

log = get_logger(__name__)

# Positions one turn takes: its message, a summary it may make, its reply.
_POSITIONS = 3
# Messages one turn counts against the bound: its message and its reply.
_COUNTED = 2


@dataclass(frozen=True, slots=True)
class TurnOutcome:
    """A turn's end: the stored turn, or the error its reply failed with."""

    turn: TurnOut | None
    error: XynergyError | None


# What a streamed turn's sink carries: pieces of text and tool events, then the outcome.
StreamItem = str | ToolEvent | TurnOutcome


async def begin_turn(
    platform: Platform,
    settings: AssistantSettings,
    *,
    caller: AuthContext,
    conversation_id: str | None,
    text: str,
    model: str | None,
) -> TurnContext:
    """Check the bounds, store the user message; the context of the reply to make."""
    if len(text) > settings.message_max_chars:
        raise ValidationFailed(f"A message may be at most {settings.message_max_chars} characters.")
    if not text.strip():
        raise ValidationFailed("The message is empty.")
    chosen = model or settings.default_model
    if settings.models_allowed and chosen not in settings.models_allowed:
        raise ValidationFailed(f"The model {chosen!r} is not one the assistant may use.")
    # One transaction, committed before the model is called: the conversation's
    # ownership, its bound and the positions in one conditional UPDATE (a new
    # conversation is created with them), then the message.
    async with unit_of_work(platform.sessionmaker) as session:
        repository = AssistantRepository(session)
        if conversation_id is None:
            conversation = await new_conversation(
                session,
                caller=caller,
                settings=settings,
                title="",
                messages=_COUNTED,
                positions=_POSITIONS,
            )
            conversation_id, first = conversation.id, 0
        else:
            opened = await repository.open_turn(
                tenant_id=caller.tenant_id,
                key_id=caller.key_id,
                conversation_id=conversation_id,
                messages=_COUNTED,
                limit=settings.messages_per_conversation_max,
                positions=_POSITIONS,
            )
            if opened is None:
                # Nothing was written; only a refused turn pays for this read.
                await owned_conversation(
                    session, caller=caller, conversation_id=conversation_id, writing=True
                )
                raise Conflict(
                    f"The conversation has reached {settings.messages_per_conversation_max} "
                    "messages, the most allowed; start a new one."
                )
            first = opened
        row = _user_row(caller, conversation_id, first, text)
        await repository.insert_message(row)
    return TurnContext(
        platform=platform,
        settings=settings,
        cache=ContextCache(platform.cache, settings.context_cache_ttl_seconds),
        caller=caller,
        conversation_id=conversation_id,
        user_seq=first,
        user_text=text,
        user_message=MessageOut(
            id=row["id"],
            seq=first,
            role="user",
            content=text,
            status="complete",
            created_at=row["created_at"],
        ),
        summary_seq=first + 1,
        model=chosen,
        budget_tokens=settings.context_budget_tokens,
    )


def _user_row(caller: AuthContext, conversation_id: str, seq: int, text: str) -> dict[str, Any]:
    # Id and time made here, not by the database: the turn answers with them
    # without reading the row back.
    return {
        "id": new_id(),
        "tenant_id": caller.tenant_id,
        "conversation_id": conversation_id,
        "seq": seq,
        "role": "user",
        "content": text,
        "status": "complete",
        "created_at": utcnow(),
    }


async def run_turn(
    turn: TurnContext, sink: DeltaSink[StreamItem] | None, *, replies: GroupWriter
) -> TurnOutcome:
    """Generate and store the reply (its row committed with the replies of other turns
    ending at the same moment); the outcome also goes to ``sink`` when streaming."""
    try:
        return await _run(turn, sink, replies)
    except Exception:
        if sink is not None:
            await sink.push(TurnOutcome(None, XynergyError("The reply failed.")))
        raise


async def _run(
    turn: TurnContext, sink: DeltaSink[StreamItem] | None, replies: GroupWriter
) -> TurnOutcome:
    settings = turn.settings
    conversed: Conversed | None = None
    error: XynergyError | None = None
    window: Window | None = None
    try:
        turn = await sized(turn)
        plan = plan_tools(turn)
        window = await build_window(turn, reserved_tokens=plan.tokens)
        messages = window.messages(settings.system_prompt)
        plan = plan.within(turn.budget_tokens - prompt_tokens(messages))
        check_window(turn, messages, plan.tokens)
        conversed = await converse(turn, plan, messages, sink.push if sink is not None else None)
    except XynergyError as exc:
        error = exc
    outcome = await _store_reply(turn, conversed, error, replies)
    if conversed is not None and window is not None and outcome.turn is not None:
        window.turns += conversed.stored
        window.turns.append(Turn(outcome.turn.reply.seq, "assistant", conversed.reply.text))
        await turn.cache.remember(
            tenant_id=turn.caller.tenant_id,
            conversation_id=turn.conversation_id,
            last_seq=outcome.turn.reply.seq,
            window=window,
        )
    if sink is not None:
        await sink.push(outcome)
    return outcome


async def _store_reply(
    turn: TurnContext, conversed: Conversed | None, error: XynergyError | None, replies: GroupWriter
) -> TurnOutcome:
    reply = conversed.reply if conversed is not None else None
    reply_seq = turn.user_seq + _POSITIONS - 1
    if conversed is not None and conversed.reply_seq is not None:
        reply_seq = conversed.reply_seq  # after the tool rounds it stored
    row: dict[str, Any] = {
        "id": new_id(),
        "tenant_id": turn.caller.tenant_id,
        "conversation_id": turn.conversation_id,
        "seq": reply_seq,
        "role": "assistant",
        "created_at": utcnow(),
    }
    if reply is not None:
        row |= {
            "content": reply.text,
            "status": "complete",
            "model": reply.model,
            "provider": reply.provider,
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "cost_usd": reply.cost_usd,
        }
    else:
        row |= {
            "content": error.detail if error is not None else "The reply failed.",
            "status": "failed",
        }
    stored_row = await replies.write(
        turn.platform.sessionmaker,
        lambda session: AssistantRepository(session).insert_reply_if_live(row),
    )
    if not stored_row:
        # Deleted while the reply was generated: nothing to attach it to.
        return TurnOutcome(None, error or Conflict("The conversation was deleted."))
    stored = message_out(Message(**row))
    if conversed is None:
        return TurnOutcome(None, error)
    # The turn's cost: every model call it made, tool rounds included.
    usage = Usage(
        input_tokens=conversed.input_tokens,
        output_tokens=conversed.output_tokens,
        cost_usd=str(conversed.cost_usd),
    )
    return TurnOutcome(
        TurnOut(
            conversation_id=turn.conversation_id,
            user_message=turn.user_message,
            reply=stored,
            usage=usage,
        ),
        None,
    )
