"""Token estimates, the same as the AI Routing Engine's (``providers/tokens.py``).

The AI Routing Engine sizes a prompt with :func:`approximate_tokens` per message
when it picks a model that can hold it; the assistant budgets with the same
formula (plus the chat framing overhead), so what it builds is what the engine
measures. Services do not import each other: when a third user appears, this
belongs in the platform.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["CHARS_PER_TOKEN", "message_tokens", "prompt_tokens", "text_tokens"]

CHARS_PER_TOKEN = 4
_PER_MESSAGE_OVERHEAD = 4
_PER_REQUEST_OVERHEAD = 3


def text_tokens(text: str) -> int:
    """About four characters a token, at least one (the engine's ``approximate_tokens``)."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))


def message_tokens(content: str) -> int:
    """One message's tokens with its framing."""
    return text_tokens(content) + _PER_MESSAGE_OVERHEAD


def prompt_tokens(messages: Iterable[tuple[str, str]]) -> int:
    """The estimate of a whole prompt of ``(role, content)`` pairs."""
    return _PER_REQUEST_OVERHEAD + sum(message_tokens(content) for _, content in messages)
