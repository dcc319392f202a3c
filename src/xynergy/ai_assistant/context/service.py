"""Building a reply's context: from the cache or SQL, summarising on overflow."""

from __future__ import annotations

from dataclasses import dataclass

from xynergy.ai_assistant import ai_client
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.cache import ContextCache
from xynergy.ai_assistant.context.tokens import message_tokens
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
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform

__all__ = ["TurnContext", "build_window"]


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
    summary_seq: int  # the position a summary made by this turn takes
    model: str


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
        budget=max(1, settings.context_budget_tokens - reserved_tokens),
        recent_share=settings.context_recent_share,
        summary_max_tokens=settings.summary_max_tokens,
    )
    if overflow is not None:
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
    transcript = _transcript(window, overflow, settings.summary_input_budget_tokens)
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
