"""One turn: the user message stored, the reply generated in its own task, then stored.

``begin_turn`` writes the user message (and a new conversation if asked) in one
unit of work, after every bound is checked, so a refused turn writes nothing.
``run_turn`` (in a :class:`TurnRunner` task) builds the context, calls the model
through the AI Routing Engine and stores the reply, or a failed reply saying
why; it returns instead of raising so the outcome is stored whoever listens.
"""

from __future__ import annotations

from dataclasses import dataclass

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import ContextCache
from xynergy.ai_assistant.context.service import TurnContext, build_window
from xynergy.ai_assistant.context.window import Turn, Window
from xynergy.ai_assistant.conversations.service import (
    message_out,
    new_conversation,
    owned_conversation,
)
from xynergy.ai_assistant.messages.rounds import Conversed, ToolEvent, converse, plan_tools
from xynergy.ai_assistant.messages.turns import DeltaSink
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.schemas import MessageOut, TurnOut, Usage
from xynergy.platform.auth.context import AuthContext
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
    async with unit_of_work(platform.sessionmaker) as session:
        if conversation_id is None:
            conversation = await new_conversation(
                session, caller=caller, settings=settings, title=""
            )
        else:
            conversation = await owned_conversation(
                session, caller=caller, conversation_id=conversation_id, writing=True
            )
        repository = AssistantRepository(session)
        first = await repository.reserve(
            conversation_id=conversation.id,
            messages=_COUNTED,
            limit=settings.messages_per_conversation_max,
            positions=_POSITIONS,
        )
        if first is None:
            raise Conflict(
                f"The conversation has reached {settings.messages_per_conversation_max} "
                "messages, the most allowed; start a new one."
            )
        await repository.add_message(
            Message(
                tenant_id=caller.tenant_id,
                conversation_id=conversation.id,
                seq=first,
                role="user",
                content=text,
            )
        )
    return TurnContext(
        platform=platform,
        settings=settings,
        cache=ContextCache(platform.cache, settings.context_cache_ttl_seconds),
        caller=caller,
        conversation_id=conversation.id,
        user_seq=first,
        user_text=text,
        summary_seq=first + 1,
        model=chosen,
    )


async def run_turn(turn: TurnContext, sink: DeltaSink[StreamItem] | None) -> TurnOutcome:
    """Generate and store the reply; the outcome also goes to ``sink`` when streaming."""
    try:
        return await _run(turn, sink)
    except Exception:
        if sink is not None:
            await sink.push(TurnOutcome(None, XynergyError("The reply failed.")))
        raise


async def _run(turn: TurnContext, sink: DeltaSink[StreamItem] | None) -> TurnOutcome:
    settings = turn.settings
    conversed: Conversed | None = None
    error: XynergyError | None = None
    window: Window | None = None
    try:
        plan = plan_tools(turn)
        window = await build_window(turn, reserved_tokens=plan.tokens)
        messages = window.messages(settings.system_prompt)
        conversed = await converse(turn, plan, messages, sink.push if sink is not None else None)
    except XynergyError as exc:
        error = exc
    outcome = await _store_reply(turn, conversed, error)
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
    turn: TurnContext, conversed: Conversed | None, error: XynergyError | None
) -> TurnOutcome:
    reply = conversed.reply if conversed is not None else None
    reply_seq = turn.user_seq + _POSITIONS - 1
    if conversed is not None and conversed.reply_seq is not None:
        reply_seq = conversed.reply_seq  # after the tool rounds it stored
    async with unit_of_work(turn.platform.sessionmaker) as session:
        repository = AssistantRepository(session)
        user = await repository.turns_after(
            conversation_id=turn.conversation_id,
            after_seq=turn.user_seq - 1,
            before_seq=turn.user_seq + 1,
            limit=1,
        )
        if not user:
            # Deleted while the reply was generated: nothing to attach it to.
            return TurnOutcome(None, error or Conflict("The conversation was deleted."))
        if reply is not None:
            row = Message(
                tenant_id=turn.caller.tenant_id,
                conversation_id=turn.conversation_id,
                seq=reply_seq,
                role="assistant",
                content=reply.text,
                model=reply.model,
                provider=reply.provider,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
            )
        else:
            row = Message(
                tenant_id=turn.caller.tenant_id,
                conversation_id=turn.conversation_id,
                seq=reply_seq,
                role="assistant",
                status="failed",
                content=error.detail if error is not None else "The reply failed.",
            )
        await repository.add_message(row)
        stored = message_out(row)
        user_out: MessageOut = message_out(user[0])
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
            conversation_id=turn.conversation_id, user_message=user_out, reply=stored, usage=usage
        ),
        None,
    )
