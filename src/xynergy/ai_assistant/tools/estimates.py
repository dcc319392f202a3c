"""What a proposed action may cost, said before the user confirms it.

An action runs a System Runtime workflow; the AI calls its steps make go through
the AI Routing Engine, which picks the model (by preference) when the step runs.
So the estimate is an upper bound: the tokens the workflow's definition is
expected to use (``XYNERGY_ASSISTANT_ACTION_AI_TOKENS``) at the catalogue's
highest prices, as the engine lists them (``GET /v1/models``). A definition
with no expected tokens, or a catalogue with an unpriced model, has no estimate
(null), never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Any

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.model_info import price_ceiling
from xynergy.ai_assistant.tools.registry import Tool
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.runtime import Platform

__all__ = ["Estimate", "estimate_action"]

# Millionths of a dollar: the finest a per-token price makes meaningful here.
_STEP = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Estimate:
    """A cost (exact decimal text, US dollars) and how it was reached."""

    cost_usd: str
    basis: str


async def estimate_action(
    platform: Platform,
    *,
    caller: AuthContext,
    settings: AssistantSettings,
    tool: Tool,
    arguments: dict[str, Any],
) -> Estimate | None:
    """The estimate of running ``tool`` with ``arguments``, or None when unknown."""
    if tool.workflow_start is None:
        return None
    try:
        definition = tool.workflow_start(arguments).get("definition")
    except (KeyError, TypeError, ValueError):
        return None  # arguments the runtime would refuse anyway
    tokens = settings.action_ai_tokens.get(str(definition))
    if tokens is None:
        return None
    ceiling = await price_ceiling(platform, caller=caller, ttl=settings.model_info_ttl_seconds)
    cost = ceiling.cost_usd(*tokens) if ceiling is not None else None
    if cost is None:
        return None
    prompt, completion = tokens
    return Estimate(
        cost_usd=str(cost.quantize(_STEP, rounding=ROUND_UP)),
        basis=(
            f"At most: workflow {definition} is expected to use about {prompt} prompt and "
            f"{completion} completion tokens, priced at the highest prices of any catalogue "
            "model."
        ),
    )
