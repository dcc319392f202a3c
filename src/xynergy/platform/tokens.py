"""Token estimates for decisions made before a model has counted anything.

One formula for every service: the AI Routing Engine sizes a prompt with it
(which model can hold it, what a request may reserve of a budget) and the AI
Assistant builds its contexts to a budget with it, so what the assistant builds
is what the engine measures. Billing always uses the provider's own counts.
"""

from __future__ import annotations

__all__ = ["CHARS_PER_TOKEN", "PER_MESSAGE_OVERHEAD", "PER_REQUEST_OVERHEAD", "approximate_tokens"]

# About four characters a token for English text (OpenAI's rule of thumb).
CHARS_PER_TOKEN = 4
# Chat formats add a few framing tokens per message and per request.
PER_MESSAGE_OVERHEAD = 4
PER_REQUEST_OVERHEAD = 3


def approximate_tokens(text: str) -> int:
    """A typical token count for English text (about four characters a token), at least one."""
    return max(1, -(-len(text) // CHARS_PER_TOKEN))
