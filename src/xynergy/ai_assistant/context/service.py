"""Building a reply's context: from the cache or SQL, summarising on overflow."""

from __future__ import annotations

from dataclasses import dataclass, replace

from xynergy.ai_assistant import ai_client
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import ContextCache
from xynergy.ai_assistant.context.model_info import model_info
from xynergy.ai_assistant.context.tokens import message_tokens, prompt_tokens
from xynergy.ai_assistant.context.window import (
    Overflow,
    Turn,
    Window,
    fit,
    newest_within,
    summary_max_chars,
)
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.schemas import MessageOut
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import ValidationFailed
from xynergy.platform.runtime import Platform

__all__ = ["TurnContext", "build_window", "sized"]


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What one turn's context is built for."""

    platform: Platform
    settings: AssistantSettings
    cache: ContextCache
    caller: AuthContext
    conversation_id: str
    user_seq: int  # the new user message's position
    user_text: str
    user_message: MessageOut  # as stored (committed before any model call)
    summary_seq: int  # the position a summary made by this turn takes
    model: str
    # Most prompt tokens a model call of this turn may send (see sized()).
    budget_tokens: int
    context_window: int | None = None  # the model's, as the AI Routing Engine lists it


async def sized(turn: TurnContext) -> TurnContext:
    """The turn with its budget: the setting, lowered to fit the model's context window
    with room for the reply, when the AI Routing Engine says what the window is."""
    settings = turn.settings
    info = await model_info(
        turn.platform, caller=turn.caller, model=turn.model, ttl=settings.model_info_ttl_seconds
    )
    if info is None or info.context_window is None:
        return turn
    room = info.context_window - settings.reply_max_tokens
    return replace(
        turn, budget_tokens=min(turn.budget_tokens, room), context_window=info.context_window
    )


def check_window(turn: TurnContext, messages: list[tuple[str, str]], reserved_tokens: int) -> None:
    """Refuse a prompt that, with its reply, would not fit the model's context window
    (a window smaller than the newest message, the system prompt and a summary)."""
    window = turn.context_window
    if window is None:
        return
    needed = prompt_tokens(messages) + reserved_tokens + turn.settings.reply_max_tokens
    if needed > window:
        raise ValidationFailed(
            f"The model {turn.model!r} has a context window of {window} tokens: too small for "
            f"this message with a reply of up to {turn.settings.reply_max_tokens} tokens."
        )


async def build_window(turn: TurnContext, *, reserved_tokens: int = 0) -> Window:
    """The window of this turn's model call, within the budget (summarising if needed).

    ``reserved_tokens`` of the budget are kept for what the call sends besides the
    window (the tool definitions); the turn's tool results must then fit the rest.
    """
    window = await _load(turn)
    settings = turn.settings
    overflow = fit(
        window,
        system_prompt=settings.system_prompt,
        budget=max(1, turn.budget_tokens - reserved_tokens),
        recent_share=settings.context_recent_share,
        summary_max_tokens=settings.summary_max_tokens,
    )
    # Nothing older to fold in (only the newest turn is over a small window's room):
    # a summary call would have nothing to read; check_window() refuses the prompt.
    if overflow is not None and (overflow.dropped or window.truncated):
        window = await _summarise(turn, window, overflow)
    return window


async def _load(turn: TurnContext) -> Window:
    tenant_id = turn.caller.tenant_id
    cached = await turn.cache.recall(tenant_id=tenant_id, conversation_id=turn.conversation_id)
    # Valid only if nothing was written since it was stored but this turn's message.
    if cached is not None and cached.last_seq == turn.user_seq - 1:
        window = cached.window
        window.turns.append(Turn(turn.user_seq, "user", turn.user_text))
        return window
    async with unit_of_work(turn.platform.sessionmaker) as session:
        repository = AssistantRepository(session)
        summary = await repository.latest_summary(conversation_id=turn.conversation_id)
        through = summary.summary_through_seq if summary is not None else None
        limit = turn.settings.context_fetch_max
        rows = await repository.turns_after(
            conversation_id=turn.conversation_id,
            after_seq=-1 if through is None else through,
            before_seq=turn.user_seq + 1,
            limit=limit,
        )
    return Window(
        summary=summary.content if summary is not None else None,
        summary_through=-1 if through is None else through,
        turns=[Turn(row.seq, row.role, row.content) for row in reversed(rows)],
        truncated=len(rows) >= limit,
    )


async def _summarise(turn: TurnContext, window: Window, overflow: Overflow) -> Window:
    """Fold the dropped turns (and the previous summary) into a new, stored summary."""
    settings = turn.settings
    budget = settings.summary_input_budget_tokens
    if turn.context_window is not None:
        # The summary call, its instruction and its reply within the window too.
        framing = prompt_tokens([("system", settings.summary_prompt), ("user", "")])
        budget = min(budget, turn.context_window - settings.summary_max_tokens - framing)
    transcript = _transcript(window, overflow, max(0, budget))
    reply = await ai_client.summarise(
        turn.platform.services,
        caller=turn.caller,
        model=turn.model,
        instruction=settings.summary_prompt,
        transcript=transcript,
        max_tokens=settings.summary_max_tokens,
    )
    # Cut to its token bound whatever the model did: the window was sized for it.
    text = reply.text[: summary_max_chars(settings.summary_max_tokens)]
    through = overflow.dropped[-1].seq if overflow.dropped else overflow.kept[0].seq - 1
    async with unit_of_work(turn.platform.sessionmaker) as session:
        await AssistantRepository(session).add_message(
            Message(
                tenant_id=turn.caller.tenant_id,
                conversation_id=turn.conversation_id,
                seq=turn.summary_seq,
                role="summary",
                content=text,
                summary_through_seq=through,
                model=reply.model,
                provider=reply.provider,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
            )
        )
    return Window(summary=text, summary_through=through, turns=list(overflow.kept))


def _transcript(window: Window, overflow: Overflow, budget: int) -> str:
    """What the summary call reads: the previous summary, then the newest dropped turns
    that fit ``budget`` (an older remainder is noted, not sent)."""
    parts: list[str] = []
    room = budget
    if window.summary:
        parts.append("Earlier summary:\n" + window.summary)
        room -= message_tokens(parts[0])
    chosen, left_out = newest_within(overflow.dropped, max(0, room))
    if left_out or window.truncated:
        parts.append("(Some older messages are left out.)")
    parts += [f"{turn.role}: {turn.content}" for turn in chosen]
    return "\n\n".join(parts)
