"""One tool call the model asked for: checked, then run (a read) or turned into a proposal.

Whatever happens, the outcome is a tool result the model reads next: a refusal
(a tool the key may not use, an unknown tool, bad arguments, the turn's limit)
is a result saying so, never an error of the turn. Results are cut to the
configured size with a note, so a large answer cannot flood the context.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from xynergy.ai_assistant.tools.registry import Tool, tool_named
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import XynergyError
from xynergy.platform.services import ServiceClient

__all__ = ["ToolOutcome", "cut", "decide", "run_read"]

_ERROR_STATUS = 400
_ARGUMENTS_MAX_CHARS = 20_000


@dataclass(slots=True)
class ToolOutcome:
    """What became of one call: ``kind`` is ran, proposed or refused."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    kind: str
    result: str = ""
    tool: Tool | None = None
    action: dict[str, Any] | None = field(default=None)


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, a note saying how much was left out."""
    if len(text) <= limit:
        return text
    note = f"\n[Result truncated: {len(text) - limit} of {len(text)} characters left out.]"
    return text[: max(0, limit - len(note))] + note


def _arguments(raw: Any) -> dict[str, Any] | str:
    """The call's arguments as an object, or why they are not one."""
    if not isinstance(raw, str) or len(raw) > _ARGUMENTS_MAX_CHARS:
        return "the arguments are not a JSON text of an allowed size"
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return "the arguments are not valid JSON"
    return value if isinstance(value, dict) else "the arguments are not a JSON object"


def decide(
    call: dict[str, Any], *, offered: dict[str, Tool], caller: AuthContext, over_limit: bool
) -> ToolOutcome:
    """Refuse the call, or say it may run (``ran`` pending) or be proposed."""
    function = call.get("function") or {}
    call_id = str(call.get("id") or "")
    name = str(function.get("name") or "")
    arguments = _arguments(function.get("arguments"))

    def refused(why: str) -> ToolOutcome:
        return ToolOutcome(call_id, name, {}, "refused", f"Not run: {why}.")

    if over_limit:
        return refused("this turn has used all the tool calls it may make")
    tool = offered.get(name)
    if tool is None:
        known = tool_named(name)
        if known is not None and not caller.allows(*known.scopes):
            return refused(f"your API key lacks the scopes {sorted(known.scopes - caller.scopes)}")
        return refused(f"there is no tool {name!r} available")
    if isinstance(arguments, str):
        return refused(arguments)
    try:
        jsonschema_rs.validate(tool.parameters, arguments)
    except jsonschema_rs.ValidationError as exc:
        return refused(f"the arguments do not match the tool's schema ({exc.message})")
    return ToolOutcome(call_id, name, arguments, "proposed" if tool.writes else "ran", tool=tool)


async def run_read(
    services: ServiceClient, outcome: ToolOutcome, *, caller: AuthContext, result_max_chars: int
) -> None:
    """Run a read-only tool now; its answer (or why it failed) becomes the result."""
    tool = outcome.tool
    if tool is None or tool.writes:
        raise ValueError("only a checked read-only call runs in a turn")
    call = tool.call(outcome.arguments)
    try:
        response = await services.request(
            tool.service,
            tool.method,
            call.path,
            caller=caller,
            scopes=tool.scopes,
            params=call.params,
            json=call.json,
        )
    except XynergyError as exc:
        outcome.result = f"The call failed: {exc.detail}"
        return
    text = response.content.decode("utf-8", errors="replace")
    if response.status >= _ERROR_STATUS:
        text = f"The call failed ({response.status}): {text}"
    outcome.result = cut(text, result_max_chars)
