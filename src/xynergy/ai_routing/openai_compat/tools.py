"""OpenAI tool use in a request: bounds, schema checks and the conversation's rules.

Refused with a 422 before anything is spent: more tools or longer definitions
than the settings allow, a ``parameters`` that is not an object JSON Schema,
duplicate function names, a ``tool_choice`` without tools or naming a tool not
offered, a ``tool`` message that answers no call of the assistant turn before it,
and a tool call left unanswered before the conversation goes on.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs

from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.openai_compat.schemas import ChatCompletionRequest, ChatMessageIn
from xynergy.ai_routing.providers.base import ChatMessage, ToolCall, Tools, ToolSpec
from xynergy.platform.exceptions import ValidationFailed

__all__ = ["chat_messages", "tools_of"]

# Nesting deeper than this is no real function signature, and deep enough to
# exhaust recursion in code that walks schemas.
_MAX_SCHEMA_DEPTH = 32


def tools_of(body: ChatCompletionRequest, ai: AiSettings) -> Tools | None:
    """The request's tools, checked; None when it offers none."""
    if not body.tools:
        if body.tool_choice is not None:
            raise ValidationFailed("tool_choice is only allowed when tools are given.")
        return None
    if len(body.tools) > ai.tools_max:
        raise ValidationFailed(f"At most {ai.tools_max} tools are accepted.")
    specs = tuple(
        ToolSpec(
            name=tool.function.name,
            description=tool.function.description,
            parameters=_parameters(tool.function.name, tool.function.parameters),
            strict=tool.function.strict,
        )
        for tool in body.tools
    )
    names = [spec.name for spec in specs]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValidationFailed(f"Function names must be unique: {', '.join(duplicated)}.")
    size = sum(
        len(spec.name) + len(spec.description) + len(json.dumps(spec.parameters)) for spec in specs
    )
    if size > ai.tools_max_chars:
        raise ValidationFailed(
            f"The tool definitions have {size} characters; at most {ai.tools_max_chars} "
            "are accepted."
        )
    choice = body.tool_choice
    if choice is None or isinstance(choice, str):
        return Tools(specs=specs, mode=choice or "auto", parallel=body.parallel_tool_calls)
    if choice.function.name not in names:
        raise ValidationFailed(
            f"tool_choice names the function {choice.function.name!r}, which is not in tools."
        )
    return Tools(
        specs=specs, mode="named", name=choice.function.name, parallel=body.parallel_tool_calls
    )


def _parameters(name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    if parameters is None:
        return {"type": "object", "properties": {}}
    if _depth(parameters) > _MAX_SCHEMA_DEPTH:
        raise ValidationFailed(
            f"The parameters of {name!r} nest deeper than {_MAX_SCHEMA_DEPTH} levels."
        )
    if parameters.get("type", "object") != "object":
        raise ValidationFailed(f"The parameters of {name!r} must be an object JSON Schema.")
    if not jsonschema_rs.meta.is_valid(parameters):
        raise ValidationFailed(f"The parameters of {name!r} are not a valid JSON Schema.")
    return parameters


def _depth(value: Any) -> int:
    """How deeply ``value`` nests, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > _MAX_SCHEMA_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item
        if isinstance(item, dict | list):
            stack.extend((child, depth + 1) for child in children)
    return deepest


def chat_messages(messages: list[ChatMessageIn]) -> list[ChatMessage]:
    """The messages as the router sees them; the tool-call rules checked."""
    result: list[ChatMessage] = []
    unanswered: dict[str, str] = {}  # the open tool calls: id -> function name
    for position, message in enumerate(messages):
        if message.role == "tool":
            call_id = message.tool_call_id or ""
            if call_id not in unanswered:
                raise ValidationFailed(
                    f"messages[{position}] answers tool call {call_id[:64]!r}, which the "
                    "assistant message before it did not make (or was answered already)."
                )
            del unanswered[call_id]
        elif unanswered:
            raise ValidationFailed(
                f"Tool call {next(iter(unanswered))[:64]!r} has no tool message answering it "
                f"before messages[{position}]."
            )
        calls = tuple(
            ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
            for call in message.tool_calls or ()
        )
        if len({call.id for call in calls}) != len(calls):
            raise ValidationFailed(f"messages[{position}] repeats a tool call id.")
        unanswered = {call.id: call.name for call in calls} or unanswered
        # "developer" is OpenAI's newer name for the system role.
        role = "system" if message.role == "developer" else message.role
        result.append(
            ChatMessage(
                role=role,
                content=message.text(),
                tool_calls=calls,
                tool_call_id=message.tool_call_id,
            )
        )
    if unanswered:
        raise ValidationFailed(
            f"Tool call {next(iter(unanswered))[:64]!r} has no tool message answering it."
        )
    return result
