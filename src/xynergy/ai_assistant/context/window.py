"""Fitting a conversation into a token budget: pure functions, no I/O.

A context is the system prompt, the rolling summary of older turns (if any) and
the most recent turns that fit. When the unsummarised turns no longer fit, the
older ones are cut off to be summarised, keeping only the newest turns within a
share of the budget, so the next summary is needed only after the conversation
has grown by the rest of it: one summary per overflow, never one per turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from xynergy.ai_assistant.context.tokens import CHARS_PER_TOKEN, message_tokens, prompt_tokens

__all__ = ["Overflow", "Turn", "Window", "fit", "summary_message"]

SUMMARY_PREFIX = "Summary of the earlier conversation:\n"
TOOL_RESULT_PREFIX = "(Tool result) "


@dataclass(frozen=True, slots=True)
class Turn:
    """One unsummarised message as a context holds it."""

    seq: int
    role: str
    content: str


@dataclass(slots=True)
class Window:
    """What a model call is built from: the summary and the turns after it."""

    summary: str | None
    summary_through: int  # -1: nothing summarised yet
    turns: list[Turn] = field(default_factory=list)
    # Older unsummarised messages exist that were not read (the fetch bound).
    truncated: bool = False

    def messages(self, system_prompt: str) -> list[tuple[str, str]]:
        """The prompt as ``(role, content)`` pairs."""
        pairs = [("system", system_prompt)]
        if self.summary:
            pairs.append(("system", summary_message(self.summary)))
        return pairs + [_pair(turn) for turn in self.turns if turn.content]


def _pair(turn: Turn) -> tuple[str, str]:
    # An earlier turn's tool result is context, not an answer to an open call (its
    # call is not resent): the model reads it as something it was told.
    if turn.role == "tool":
        return ("assistant", TOOL_RESULT_PREFIX + turn.content)
    return (turn.role, turn.content)


@dataclass(frozen=True, slots=True)
class Overflow:
    """Turns to summarise (oldest first) and the window left once they are."""

    dropped: list[Turn]
    kept: list[Turn]


def summary_message(summary: str) -> str:
    return SUMMARY_PREFIX + summary


def fits(window: Window, system_prompt: str, budget: int) -> bool:
    """Whether the whole window fits ``budget`` and nothing older is unread."""
    return not window.truncated and prompt_tokens(window.messages(system_prompt)) <= budget


def fit(
    window: Window, *, system_prompt: str, budget: int, recent_share: float, summary_max_tokens: int
) -> Overflow | None:
    """None when ``window`` fits ``budget``; otherwise the turns to summarise and keep.

    The kept turns (the newest, the last one always) leave room for the system
    prompt and a summary of at most ``summary_max_tokens`` within
    ``recent_share`` of the budget (the last turn alone may take more, up to the
    whole budget; settings guarantee one message always fits).
    """
    if fits(window, system_prompt, budget):
        return None
    fixed = prompt_tokens(
        [("system", system_prompt), ("system", summary_text_bound(summary_max_tokens))]
    )
    room = max(0, int(budget * recent_share) - fixed)
    kept: list[Turn] = []
    used = 0
    for turn in reversed(window.turns):
        cost = message_tokens(turn.content)
        if kept and used + cost > room:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    dropped = window.turns[: len(window.turns) - len(kept)]
    return Overflow(dropped=dropped, kept=kept)


def summary_text_bound(summary_max_tokens: int) -> str:
    """The longest summary text a window may hold (its stand-in for sizing)."""
    return "x" * (summary_max_chars(summary_max_tokens) + len(SUMMARY_PREFIX))


def summary_max_chars(summary_max_tokens: int) -> int:
    """A summary is cut to this many characters, so it never costs more than its tokens."""
    return summary_max_tokens * CHARS_PER_TOKEN


def newest_within(turns: Sequence[Turn], budget: int) -> tuple[list[Turn], int]:
    """The newest of ``turns`` whose tokens fit ``budget`` (oldest first) and how many
    older ones were left out."""
    chosen: list[Turn] = []
    used = 0
    for turn in reversed(turns):
        cost = message_tokens(turn.content)
        if used + cost > budget:
            break
        chosen.append(turn)
        used += cost
    chosen.reverse()
    return chosen, len(turns) - len(chosen)
