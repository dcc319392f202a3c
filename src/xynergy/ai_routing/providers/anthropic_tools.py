"""OpenAI-shaped tool use, translated to and from the Anthropic Messages API.

OpenAI                                   Anthropic
``tools[].function.parameters``          ``tools[].input_schema``
``tool_choice`` none/auto/required/named ``tool_choice`` none/auto/any/tool
``parallel_tool_calls: false``           ``tool_choice.disable_parallel_tool_use``
assistant ``tool_calls`` (JSON text)     assistant ``tool_use`` blocks (JSON objects)
``tool`` messages                        ``tool_result`` blocks in the next user turn

What has no faithful translation is refused before any call (see
:func:`anthropic_tool_refusal`) rather than altered on the way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from xynergy.ai_routing.providers.base import ChatMessage, ToolCall, Tools

__all__ = [
    "anthropic_tool_refusal",
    "anthropic_tools",
    "anthropic_turns",
    "tool_call_of",
]

# Anthropic's pattern for tool_use ids; OpenAI accepts more.
_TOOL_USE_ID = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CHOICES = {"auto": "auto", "required": "any", "none": "none", "named": "tool"}

Content = str | list[dict[str, Any]]


def anthropic_tool_refusal(messages: Sequence[ChatMessage], tools: Tools | None) -> str | None:
    """Why an Anthropic model cannot be asked this request as it stands, or None."""
    if tools is not None and any(tool.strict for tool in tools.specs):
        # Strict schemas need a beta API this adapter does not speak.
        return "strict function schemas are not supported by the Anthropic adapter"
    calls = [call for message in messages for call in message.tool_calls]
    if (calls or any(m.role == "tool" for m in messages)) and (tools is None or not tools.specs):
        return "a conversation with tool calls must also list its tools"
    for call in calls:
        if not _TOOL_USE_ID.fullmatch(call.id):
            return f"tool call id {call.id[:64]!r} is not a valid Anthropic tool_use id"
        if not isinstance(_loads(call.arguments), dict):
            return f"the arguments of tool call {call.id[:64]!r} are not a JSON object"
    return None


def anthropic_tools(tools: Tools) -> dict[str, Any]:
    """The ``tools`` and ``tool_choice`` fields."""
    definitions = []
    for tool in tools.specs:
        definition: dict[str, Any] = {
            "name": tool.name,
            "input_schema": tool.parameters or {"type": "object", "properties": {}},
        }
        if tool.description:
            definition["description"] = tool.description
        definitions.append(definition)
    choice: dict[str, Any] = {"type": _CHOICES[tools.mode]}
    if tools.mode == "named":
        choice["name"] = tools.name
    if tools.parallel is False and tools.mode != "none":
        choice["disable_parallel_tool_use"] = True
    return {"tools": definitions, "tool_choice": choice}


def anthropic_turns(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """The ``messages`` field: system turns left out (they go to ``system``), tool
    results moved into user turns, and same-role neighbours merged (the API requires
    user and assistant turns to alternate)."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "user" if message.role == "tool" else message.role
        content = _content(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"] = _merge(turns[-1]["content"], content)
        else:
            turns.append({"role": role, "content": content})
    return turns


def tool_call_of(block: dict[str, Any]) -> ToolCall:
    """A ``tool_use`` content block as an OpenAI tool call (arguments as JSON text)."""
    call_id, name, arguments = block["id"], block["name"], block["input"]
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise TypeError("tool_use id or name is not text")
    if not isinstance(arguments, dict):
        raise TypeError("tool_use input is not an object")
    text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    return ToolCall(id=call_id, name=name, arguments=text)


def _content(message: ChatMessage) -> Content:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if message.content:
            result["content"] = message.content
        return [result]
    if not message.tool_calls:
        return message.content
    blocks: list[dict[str, Any]] = _blocks(message.content)
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _loads(call.arguments)}
        )
    return blocks


def _merge(first: Content, second: Content) -> Content:
    if isinstance(first, str) and isinstance(second, str):
        return first + "\n\n" + second
    return _blocks(first) + _blocks(second)


def _blocks(content: Content) -> list[dict[str, Any]]:
    if isinstance(content, list):
        return content
    # The API refuses empty text blocks.
    return [{"type": "text", "text": content}] if content else []


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
