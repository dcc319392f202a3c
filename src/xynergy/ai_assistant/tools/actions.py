"""Proposed actions: side-effecting tool calls a person confirms or rejects.

An action lives on the ``tool`` message that answered the model's call (its id
is the action's id; the state is the ``action`` member of that message's
``tool_calls``), so it belongs to the conversation, its tenant and its key like
every message: another key's or tenant's action is 404 like its conversation.
A confirmed action runs as a System Runtime workflow, started with the
confirming key's identity and the tool's scopes (checked again here: a key that
lost a scope since the proposal cannot confirm), idempotently by the action's
id. Its progress is read back from the run when the action is read, and a
finished run's outcome (the campaign drafted or approved, the content created,
the keywords tracked) from its steps' outputs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs

from xynergy.ai_assistant.conversations.service import owned_conversation
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.schemas import ActionOut
from xynergy.ai_assistant.tools.registry import RUNTIME, tool_named
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
    XynergyError,
)
from xynergy.platform.runtime import Platform

__all__ = ["action_of", "confirm_action", "new_action", "read_action", "reject_action"]

_NOT_FOUND = "No such action."
_RUNS = "/api/workflows"
_READ_RUNS = ("workflows:read",)
_STARTED = 202
_FIRST_SERVER_ERROR = 500
_OK = 200
_FINISHED = frozenset({"succeeded", "failed", "cancelled"})
# The id of what a step made or changed: the first member of its output (a
# campaign or content item), found even when the output summary was cut.
_OUTPUT_ID = re.compile(r'"id"\s*:\s*"([0-9a-f]{32})"')
# The counts of a keyword import's report.
_IMPORT_COUNT = re.compile(r'"(received|inserted|duplicates_existing|rejected)"\s*:\s*(\d+)')


def new_action(
    *,
    action_id: str,
    tool: str,
    inputs: dict[str, Any],
    cost: str | None,
    cost_basis: str | None = None,
) -> dict[str, Any]:
    return {
        "id": action_id,
        "tool": tool,
        "inputs": inputs,
        "estimated_cost_usd": cost,
        "estimated_cost_basis": cost_basis,
        "status": "proposed",
        "workflow_id": None,
        "workflow_status": None,
        "campaign_id": None,
        "detail": None,
        "content_id": None,
        "result_summary": None,
    }


def action_of(message: Message) -> dict[str, Any] | None:
    calls = message.tool_calls or []
    action = calls[0].get("action") if calls and isinstance(calls[0], dict) else None
    return action if isinstance(action, dict) else None


def _out(conversation_id: str, action: dict[str, Any]) -> ActionOut:
    return ActionOut(conversation_id=conversation_id, **action)


async def _load(
    platform: Platform, *, caller: AuthContext, conversation_id: str, action_id: str, writing: bool
) -> dict[str, Any]:
    async with unit_of_work(platform.sessionmaker) as session:
        await owned_conversation(
            session, caller=caller, conversation_id=conversation_id, writing=writing
        )
        row = await AssistantRepository(session).tool_message(
            conversation_id=conversation_id, message_id=action_id
        )
        action = action_of(row) if row is not None else None
        if action is None:
            raise NotFound(_NOT_FOUND)
        return dict(action)


async def _save(platform: Platform, *, conversation_id: str, action: dict[str, Any]) -> None:
    async with unit_of_work(platform.sessionmaker) as session:
        row = await AssistantRepository(session).tool_message(
            conversation_id=conversation_id, message_id=action["id"]
        )
        if row is None:  # the conversation was deleted meanwhile
            raise NotFound(_NOT_FOUND)
        calls = [dict(call) for call in row.tool_calls or []]
        calls[0]["action"] = action
        row.tool_calls = calls  # a new list: the JSON column sees the change


async def confirm_action(
    platform: Platform, *, caller: AuthContext, conversation_id: str, action_id: str
) -> ActionOut:
    """Run a proposed action as a workflow, acting with the confirming key."""
    action = await _load(
        platform, caller=caller, conversation_id=conversation_id, action_id=action_id, writing=True
    )
    tool = tool_named(action["tool"])
    if tool is None or tool.workflow_start is None:
        raise NotFound(_NOT_FOUND)
    if action["status"] != "proposed":
        raise Conflict(f"The action is already {action['status']}.")
    if not caller.allows(*tool.scopes):
        raise Forbidden(f"This action needs the scopes {sorted(tool.scopes)}.")
    # Checked when proposed; again here, so inputs stored under an older, looser
    # schema never reach a service: the refusal is clear and nothing starts.
    try:
        jsonschema_rs.validate(tool.parameters, action["inputs"])
    except jsonschema_rs.ValidationError as exc:
        raise ValidationFailed(f"The action's inputs are not valid: {exc.message}") from exc
    # No transaction is held across the call: the runtime writes to the same database.
    response = await platform.services.request(
        RUNTIME,
        "POST",
        _RUNS + "/start",
        caller=caller,
        scopes=tool.scopes,
        json=tool.workflow_start(action["inputs"]),
        idempotency_key="assistant-action-" + action_id,
    )
    if response.status >= _FIRST_SERVER_ERROR:
        # Transient (the runtime or its database busy or away): the action stays
        # proposed and the user is told to retry; marked failed, the confirmed write
        # was lost for good behind a 200. A retry starts it once: the start is keyed.
        raise UpstreamUnavailable(
            "The workflow could not be started now; confirm again later.",
            headers=response.retry_after_headers(),
        )
    body = _json(response.content)
    if response.status == _STARTED and isinstance(body, dict):
        action |= {"status": "running", "workflow_id": body.get("id")}
        action["workflow_status"] = body.get("status")
    else:
        detail = body.get("detail") if isinstance(body, dict) else None
        action |= {"status": "failed", "detail": f"The workflow did not start: {detail}"}
    await _save(platform, conversation_id=conversation_id, action=action)
    return _out(conversation_id, action)


async def reject_action(
    platform: Platform, *, caller: AuthContext, conversation_id: str, action_id: str
) -> ActionOut:
    """Decline a proposed action: it will never run."""
    action = await _load(
        platform, caller=caller, conversation_id=conversation_id, action_id=action_id, writing=True
    )
    if action["status"] != "proposed":
        raise Conflict(f"The action is already {action['status']}.")
    action["status"] = "rejected"
    await _save(platform, conversation_id=conversation_id, action=action)
    return _out(conversation_id, action)


async def read_action(
    platform: Platform, *, caller: AuthContext, conversation_id: str, action_id: str
) -> ActionOut:
    """The action; a running one's progress is read from its run first (and stored)."""
    action = await _load(
        platform, caller=caller, conversation_id=conversation_id, action_id=action_id, writing=False
    )
    if action["status"] != "running" or not action.get("workflow_id"):
        return _out(conversation_id, action)
    if not caller.allows(*_READ_RUNS):
        return _out(conversation_id, action)  # the stored state is all this key may see
    try:
        response = await platform.services.request(
            RUNTIME,
            "GET",
            f"{_RUNS}/{action['workflow_id']}",
            caller=caller,
            scopes=_READ_RUNS,
        )
    except XynergyError:
        return _out(conversation_id, action)
    run = _json(response.content)
    if response.status != _OK or not isinstance(run, dict):
        return _out(conversation_id, action)
    status = str(run.get("status"))
    action["workflow_status"] = status
    if status in _FINISHED:
        action["status"] = "succeeded" if status == "succeeded" else "failed"
        action |= _outcome(run)
        if status != "succeeded":
            action["detail"] = _first_error(run)
    await _save(platform, conversation_id=conversation_id, action=action)
    return _out(conversation_id, action)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


def _outcome(run: dict[str, Any]) -> dict[str, Any]:
    """What the run's steps made: ``campaign_id``, ``content_id``, ``result_summary``."""
    found: dict[str, Any] = {}
    for step in run.get("steps") or ():
        if not isinstance(step, dict):
            continue
        operation = step.get("operation")
        summary = str(step.get("output_summary") or "")
        made = _OUTPUT_ID.search(summary)
        if operation == "aso.import_keywords":
            counts = {name: int(n) for name, n in _IMPORT_COUNT.findall(summary)}
            if "inserted" in counts:
                found["result_summary"] = (
                    f"Tracked {counts['inserted']} new keyword(s) of "
                    f"{counts.get('received', 0)}; {counts.get('duplicates_existing', 0)} "
                    "already tracked."
                )
        elif made is None:
            continue
        elif operation == "marketing.generate_campaign":
            found |= {
                "campaign_id": made.group(1),
                "result_summary": f"Campaign {made.group(1)} drafted.",
            }
        elif operation == "marketing.approve_campaign":
            found |= {
                "campaign_id": made.group(1),
                "result_summary": f"Campaign {made.group(1)} approved.",
            }
        elif operation == "aso.create_content":
            found |= {
                "content_id": made.group(1),
                "result_summary": f"Content item {made.group(1)} created.",
            }
    return found


def _first_error(run: dict[str, Any]) -> str | None:
    for step in run.get("steps") or ():
        if isinstance(step, dict) and step.get("error"):
            return str(step["error"])
    return None
