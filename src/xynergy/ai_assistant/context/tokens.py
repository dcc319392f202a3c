"""Token estimates of the assistant's contexts, with the platform's formula.

The AI Routing Engine sizes a prompt with :func:`approximate_tokens` per message
(``xynergy.platform.tokens``, shared) when it picks a model that can hold it; the
assistant budgets with the same formula and framing overheads, so what it
builds is what the engine measures.
"""

from __future__ import annotations

from collections.abc import Iterable

from xynergy.platform.tokens import (
    CHARS_PER_TOKEN,
    PER_MESSAGE_OVERHEAD,
    PER_REQUEST_OVERHEAD,
    approximate_tokens,
)

__all__ = ["CHARS_PER_TOKEN", "message_tokens", "prompt_tokens", "text_tokens"]

text_tokens = approximate_tokens


def message_tokens(content: str) -> int:
    """One message's tokens with its framing."""
    return approximate_tokens(content) + PER_MESSAGE_OVERHEAD


def prompt_tokens(messages: Iterable[tuple[str, str]]) -> int:
    """The estimate of a whole prompt of ``(role, content)`` pairs."""
    return PER_REQUEST_OVERHEAD + sum(message_tokens(content) for _, content in messages)
