"""Token estimates for decisions made before a provider has counted anything.

The per-text formula (:func:`approximate_tokens`) is the platform's
(``xynergy.platform.tokens``), shared with the AI Assistant; this module adds
what only the engine needs: a message's text with its tool calls, and an upper
bound by bytes.

Billing always uses the provider's own counts; these estimates only size what a
request may cost (budget reservations) and what it may use (tokens per minute).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from xynergy.ai_routing.providers.base import ChatMessage, Tools
from xynergy.platform.tokens import PER_MESSAGE_OVERHEAD, PER_REQUEST_OVERHEAD

__all__ = ["max_input_tokens", "message_text", "prompt_text", "tools_text"]


def message_text(message: ChatMessage) -> str:
    """Everything a message sends the model: its text and its tool calls."""
    if not message.tool_calls:
        return message.content
    calls = "".join(call.name + call.arguments for call in message.tool_calls)
    return message.content + calls


def tools_text(tools: Tools | None) -> str:
    """The tool definitions as the model reads them (JSON), or nothing."""
    if tools is None or not tools.specs:
        return ""
    return json.dumps(tools.fingerprint()[0], ensure_ascii=False, separators=(",", ":"))


def prompt_text(messages: Iterable[ChatMessage], tools: Tools | None = None) -> str:
    """The whole prompt as text, for estimates."""
    return "".join(message_text(message) for message in messages) + tools_text(tools)


def max_input_tokens(messages: Iterable[ChatMessage], tools: Tools | None = None) -> int:
    """An upper bound of the prompt's tokens: byte-level tokenizers never emit
    more tokens than UTF-8 bytes, plus the framing overhead (tool definitions too)."""
    total = PER_REQUEST_OVERHEAD + len(tools_text(tools).encode())
    for message in messages:
        total += len(message_text(message).encode()) + PER_MESSAGE_OVERHEAD
    return total
