"""What each provider kind can honour of a request's tool use, known before any call."""

from __future__ import annotations

from collections.abc import Sequence

from xynergy.ai_routing.providers.anthropic_tools import anthropic_tool_refusal
from xynergy.ai_routing.providers.base import ChatMessage, Tools

__all__ = ["tool_refusal", "uses_tools"]


def uses_tools(messages: Sequence[ChatMessage], tools: Tools | None) -> bool:
    """Whether the request offers tools or carries tool calls or results."""
    return tools is not None or any(m.tool_calls or m.role == "tool" for m in messages)


def tool_refusal(kind: str, messages: Sequence[ChatMessage], tools: Tools | None) -> str | None:
    """Why a provider of ``kind`` cannot be sent this request, or None.

    The OpenAI protocol is the request's own and the offline provider follows it,
    so only the Anthropic translation can fall short.
    """
    if kind == "anthropic":
        return anthropic_tool_refusal(messages, tools)
    return None
