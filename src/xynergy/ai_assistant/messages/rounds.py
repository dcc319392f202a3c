"""A turn's model calls with tools: call, run the reads, propose the writes, call again.

Each round asks the model with the tools the key may use; the tool calls it
makes are checked one by one (see ``tools.calls``), read-only ones run at once
and side-effecting ones are stored as proposed actions, never run. The round
(the model's calls and every result) is stored before the model is called
again with the results. Bounds from settings end the loop: the tool calls a
turn may make (then one last call with tools switched off), the tokens a turn
may use, and a proposal (the user decides before anything else is done).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from xynergy.ai_assistant import ai_client
from xynergy.ai_assistant.context.service import TurnContext
from xynergy.ai_assistant.context.tokens import CHARS_PER_TOKEN, prompt_tokens, text_tokens
from xynergy.ai_assistant.context.window import Turn
from xynergy.ai_assistant.models import Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.tools.actions import new_action
from xynergy.ai_assistant.tools.calls import ToolOutcome, decide, run_read
from xynergy.ai_assistant.tools.estimates import estimate_action
from xynergy.ai_assistant.tools.registry import Tool, offered_to, openai_tools, relevant_scopes
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import Conflict

__all__ = ["Conversed", "ToolEvent", "ToolPlan", "converse", "plan_tools"]

# Tokens one tool message's framing takes, and the least room a cut result keeps
# for its note (a cut result is never shorter than this).
_RESULT_FRAMING = 8
_NOTE_ROOM = 120
# Tool plans kept (one per tool-scope combination in use; a handful in practice).
_PLANS_MAX = 256


@dataclass(frozen=True, slots=True)
class ToolEvent:
    """A tool call, its result or a proposed action, for a stream to show."""

    payload: dict[str, Any]


Push = Callable[[str | ToolEvent], Awaitable[None]]


@dataclass(slots=True)
class Conversed:
    """The final answer, the turn's totals, and what the rounds stored."""

    reply: ai_client.Reply
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    stored: list[Turn] = field(default_factory=list)
    reply_seq: int | None = None  # the reply's position when rounds took later ones

    def add(self, reply: ai_client.Reply) -> None:
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.cost_usd += Decimal(reply.cost_usd or "0")


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """The tools this turn offers and the tokens their definitions take."""

    by_name: dict[str, Tool]
    specs: list[dict[str, Any]]
    tokens: int

    def within(self, room: int) -> ToolPlan:
        """This plan, or its first tools whose definitions fit ``room`` tokens.

        The budget bounds everything a call sends: when a long message leaves too
        little room, the turn offers fewer tools (none, at worst) rather than send
        more than the budget (and perhaps more than the model's window).
        """
        if self.tokens <= room:
            return self
        specs = list(self.specs)
        while specs:
            specs.pop()
            tokens = _spec_tokens(specs)
            if tokens <= room:
                break
        else:
            tokens = 0
        names = {spec["function"]["name"] for spec in specs}
        kept = {name: tool for name, tool in self.by_name.items() if name in names}
        return ToolPlan(kept, specs, tokens)


def _spec_tokens(specs: list[dict[str, Any]]) -> int:
    return text_tokens(json.dumps(specs, separators=(",", ":"))) if specs else 0


def plan_tools(turn: TurnContext) -> ToolPlan:
    """The tools this turn's key may use; the same plan for every key with the same
    tool scopes (made once, not per turn: it is read-only)."""
    settings = turn.settings
    if settings.tool_calls_per_turn_max == 0:
        return _NO_TOOLS
    return _plan_for(relevant_scopes(turn.caller), settings.tools_enabled)


_NO_TOOLS = ToolPlan({}, [], 0)


# Keyed by the scopes tools need (an admin's as such), so keys differing in other
# scopes share a plan: at most one entry per combination in use, and bounded.
@functools.lru_cache(maxsize=_PLANS_MAX)
def _plan_for(scopes: frozenset[str], enabled: tuple[str, ...] | None) -> ToolPlan:
    tools = offered_to(scopes, enabled)
    specs = openai_tools(tools)
    return ToolPlan({tool.name: tool for tool in tools}, specs, _spec_tokens(specs))


def _prompt_estimate(history: list[tuple[str, str] | dict[str, Any]], plan: ToolPlan) -> int:
    """The prompt's tokens as the context budget counts them (tool calls as their JSON)."""
    pairs = [
        item
        if isinstance(item, tuple)
        else (
            str(item["role"]),
            (item.get("content") or "") + json.dumps(item.get("tool_calls") or "")
            if item.get("tool_calls")
            else str(item.get("content") or ""),
        )
        for item in history
    ]
    return prompt_tokens(pairs) + plan.tokens


async def converse(
    turn: TurnContext,
    plan: ToolPlan,
    messages: list[tuple[str, str]],
    push: Push | None,
) -> Conversed:
    """The turn's reply, after as many tool rounds as the bounds allow."""
    settings = turn.settings
    by_name, specs = plan.by_name, plan.specs
    history: list[tuple[str, str] | dict[str, Any]] = list(messages)
    calls_left = settings.tool_calls_per_turn_max
    result: Conversed | None = None
    proposals: list[ToolOutcome] = []
    while True:
        tools_on = bool(specs) and calls_left > 0 and not proposals
        reply = await _ask(turn, history, specs if tools_on else None, push)
        if result is None:
            result = Conversed(reply)
        result.add(reply)
        result.reply = reply
        if not tools_on or not reply.tool_calls:
            break
        outcomes = [
            decide(call, offered=by_name, caller=turn.caller, over_limit=index >= calls_left)
            for index, call in enumerate(reply.tool_calls)
        ]
        calls_left -= sum(outcome.kind != "refused" for outcome in outcomes)
        # The results must fit the context budget with what is already sent: each gets
        # an equal share of the room left (cut with a note past it), and a turn whose
        # room is used up calls no more tools.
        room = turn.budget_tokens - _prompt_estimate(history, plan)
        room -= text_tokens(json.dumps(list(reply.tool_calls))) + _RESULT_FRAMING * len(outcomes)
        share = max(0, room) * CHARS_PER_TOKEN // max(1, len(outcomes))
        limit = min(settings.tool_result_max_chars, max(_NOTE_ROOM, share))
        if share < _NOTE_ROOM * 2:
            calls_left = 0
        for outcome in outcomes:
            await _settle(turn, outcome, push, limit)
        proposals += [outcome for outcome in outcomes if outcome.action is not None]
        await _store_round(turn, reply, outcomes, result)
        history.append(_assistant_message(reply))
        history += [
            {"role": "tool", "tool_call_id": o.call_id, "content": o.result} for o in outcomes
        ]
        if result.input_tokens + result.output_tokens >= settings.turn_tokens_max:
            # No model call makes this reply: it costs nothing of its own.
            result.reply = replace(
                reply,
                text=f"(This turn used its {settings.turn_tokens_max} tokens; it stops here.)",
                input_tokens=0,
                output_tokens=0,
                cost_usd="0",
                tool_calls=(),
            )
            break
    if proposals:
        note = "\n\n" + "\n".join(_proposal_line(outcome) for outcome in proposals)
        if push is not None:
            await push(note)
        result.reply = replace(result.reply, text=result.reply.text + note)
    return result


async def _ask(
    turn: TurnContext,
    history: list[tuple[str, str] | dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    push: Push | None,
) -> ai_client.Reply:
    settings = turn.settings
    if push is None:
        return await ai_client.complete(
            turn.platform.services,
            caller=turn.caller,
            model=turn.model,
            messages=history,
            max_tokens=settings.reply_max_tokens,
            tools=tools,
        )
    return await ai_client.stream(
        turn.platform.services,
        caller=turn.caller,
        model=turn.model,
        messages=history,
        max_tokens=settings.reply_max_tokens,
        on_delta=push,
        tools=tools,
    )


async def _settle(turn: TurnContext, outcome: ToolOutcome, push: Push | None, limit: int) -> None:
    """Run a read, or make a write a proposed action; tell the stream either way."""
    if push is not None:
        await push(
            ToolEvent(
                {
                    "type": "tool_call",
                    "tool_call_id": outcome.call_id,
                    "name": outcome.name,
                    "arguments": outcome.arguments,
                }
            )
        )
    if outcome.kind == "ran":
        await run_read(
            turn.platform.services,
            outcome,
            caller=turn.caller,
            result_max_chars=limit,
        )
    elif outcome.kind == "proposed" and outcome.tool is not None:
        action_id = new_id()
        estimate = await estimate_action(
            turn.platform,
            caller=turn.caller,
            settings=turn.settings,
            tool=outcome.tool,
            arguments=outcome.arguments,
        )
        outcome.action = new_action(
            action_id=action_id,
            tool=outcome.name,
            inputs=outcome.arguments,
            cost=estimate.cost_usd if estimate is not None else outcome.tool.estimated_cost_usd,
            cost_basis=estimate.basis if estimate is not None else None,
        )
        outcome.result = f"Proposed as action {action_id}, not run: the user must confirm it first."
    if push is not None:
        await push(
            ToolEvent(
                {
                    "type": "tool_result",
                    "tool_call_id": outcome.call_id,
                    "name": outcome.name,
                    "outcome": outcome.kind,
                    "content": outcome.result,
                }
            )
        )
        if outcome.action is not None:
            await push(ToolEvent({"type": "action_proposed", "action": outcome.action}))


def _assistant_message(reply: ai_client.Reply) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": reply.text or None,
        "tool_calls": list(reply.tool_calls),
    }


def _proposal_line(outcome: ToolOutcome) -> str:
    action = outcome.action or {}
    cost = action.get("estimated_cost_usd")
    cost = f"at most {cost} USD" if cost is not None else "unknown"
    inputs = json.dumps(outcome.arguments, ensure_ascii=False)
    return (
        f"Proposed action {action.get('id')}: {outcome.name} with {inputs} (estimated cost: "
        f"{cost}). It has not run: confirm or reject it."
    )


async def _store_round(
    turn: TurnContext, reply: ai_client.Reply, outcomes: list[ToolOutcome], result: Conversed
) -> None:
    """The model's tool calls and their results, at new positions (one more kept for
    the reply, so it comes after them)."""
    async with unit_of_work(turn.platform.sessionmaker) as session:
        repository = AssistantRepository(session)
        first = await repository.reserve(
            conversation_id=turn.conversation_id,
            messages=0,
            limit=turn.settings.messages_per_conversation_max,
            positions=len(outcomes) + 2,
        )
        if first is None:
            raise Conflict("The conversation was deleted.")
        rows = [
            Message(
                tenant_id=turn.caller.tenant_id,
                conversation_id=turn.conversation_id,
                seq=first,
                role="assistant",
                content=reply.text,
                tool_calls=list(reply.tool_calls),
                model=reply.model,
                provider=reply.provider,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                cost_usd=reply.cost_usd,
            )
        ]
        for offset, outcome in enumerate(outcomes, start=1):
            call: dict[str, Any] = {
                "id": outcome.call_id,
                "type": "function",
                "function": {"name": outcome.name, "arguments": json.dumps(outcome.arguments)},
                "outcome": outcome.kind,
            }
            if outcome.action is not None:
                call["action"] = outcome.action
            rows.append(
                Message(
                    id=outcome.action["id"] if outcome.action else new_id(),
                    tenant_id=turn.caller.tenant_id,
                    conversation_id=turn.conversation_id,
                    seq=first + offset,
                    role="tool",
                    content=outcome.result,
                    tool_calls=[call],
                )
            )
        for row in rows:
            await repository.add_message(row)
    result.stored += [Turn(row.seq, row.role, row.content) for row in rows]
    result.reply_seq = first + len(outcomes) + 1
