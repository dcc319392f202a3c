"""Token estimates for decisions made before a provider has counted anything.

Billing always uses the provider's own counts; these estimates only size what a
request may cost (budget reservations) and what it may use (tokens per minute).
"""

from __future__ import annotations

from collections.abc import Iterable

from xynergy.ai_routing.providers.base import ChatMessage

__all__ = ["approximate_tokens", "max_input_tokens"]

# Chat formats add a few framing tokens per message and per request.
_PER_MESSAGE_OVERHEAD = 4
_PER_REQUEST_OVERHEAD = 3
_CHARS_PER_TOKEN = 4


def max_input_tokens(messages: Iterable[ChatMessage]) -> int:
    """An upper bound of the prompt's tokens: byte-level tokenizers never emit
    more tokens than UTF-8 bytes, plus the framing overhead."""
    total = _PER_REQUEST_OVERHEAD
    for message in messages:
        total += len(message.content.encode()) + _PER_MESSAGE_OVERHEAD
    return total


def approximate_tokens(text: str) -> int:
    """A typical token count for English text (about four characters a token)."""
    return max(1, -(-len(text) // _CHARS_PER_TOKEN))
