"""The steps of campaign generation: one function each, plus the cached runner.

Every step's output is cached in ``marketing-steps`` under a hash of its exact
inputs, so a repeated or retried request reuses what was already computed (and
paid for) and marks the step ``reused``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from xynergy.marketing_engine.clients import generate_text
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.templates.schemas import Template, TemplateBody
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.services import ServiceClient

__all__ = [
    "AI_TASK",
    "STEP_NAMESPACE",
    "CampaignInput",
    "StepResult",
    "channel_plan",
    "estimated_reach",
    "inputs_hash",
    "personalise",
    "run_step",
    "schedule",
    "slug",
    "utm_tags",
]

STEP_NAMESPACE = "marketing-steps"
AI_TASK = "campaign"
# Bumped when a step's output shape changes, so old entries are never read back.
_STEP_SHAPE = 1
# reach_per_1000_budget counts people per this many units of budget.
_BUDGET_UNIT = Decimal(1000)
_PERCENT = 100
# The precision of marketing_campaigns.budget.
_CENTS = Decimal("0.01")
# marketing_campaigns.estimated_reach is a 32-bit INTEGER on PostgreSQL.
_REACH_COLUMN_MAX = 2**31 - 1
_SLUG_MAX = 100
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_MESSAGE_LINES_MAX = 20


@dataclass(frozen=True, slots=True)
class CampaignInput:
    """A generation request after validation and normalisation."""

    name: str
    business_type: str
    industry: str
    goals: tuple[str, ...]
    channels: tuple[str, ...]
    audience: str
    tone: str
    starts_on: date
    ends_on: date
    budget: Decimal

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "business_type": self.business_type,
            "industry": self.industry,
            "goals": list(self.goals),
            "channels": list(self.channels),
            "audience": self.audience,
            "tone": self.tone,
            "starts_on": self.starts_on.isoformat(),
            "ends_on": self.ends_on.isoformat(),
            "budget": str(self.budget),
        }


@dataclass(frozen=True, slots=True)
class StepResult:
    name: str
    output: dict[str, Any]
    reused: bool


def inputs_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def run_step(
    cache: PlatformCache,
    *,
    tenant_id: str,
    name: str,
    inputs: Any,
    compute: Callable[[], Awaitable[dict[str, Any]]],
) -> StepResult:
    """The step's cached output for these exact inputs, computed on a miss."""
    computed = False

    async def counted() -> dict[str, Any]:
        nonlocal computed
        computed = True
        return await compute()

    output = await cache.get_or_compute(
        STEP_NAMESPACE, tenant_id, [name, _STEP_SHAPE, inputs_hash(inputs)], counted
    )
    return StepResult(name=name, output=output, reused=not computed)


def slug(text: str) -> str:
    """``text`` as a URL-safe campaign slug (lower case, hyphens)."""
    return _NOT_SLUG.sub("-", text.lower()).strip("-")[:_SLUG_MAX].strip("-") or "campaign"


def personalise_prompt(template: Template, request: CampaignInput) -> str:
    body = TemplateBody.model_validate(template.body)
    goals = "\n".join(f"- {goal}" for goal in request.goals)
    messages = "\n".join(f"- {message}" for message in body.key_messages)
    return (
        f"Personalise a marketing campaign for a {request.business_type} business "
        f"in the {request.industry} industry.\n"
        f"Audience: {request.audience}\nTone: {request.tone}\n"
        f"Channels: {', '.join(request.channels)}\nGoals:\n{goals}\n"
        f"Template: {body.summary}\nKey messages:\n{messages}\n"
        "Write the campaign's own key messages, one per line."
    )


async def personalise(
    services: ServiceClient,
    *,
    caller: AuthContext,
    prompt: str,
    marketing: MarketingSettings,
) -> dict[str, Any]:
    """The AI Routing Engine's personalisation of the template for this request."""
    answer = await generate_text(
        services,
        caller=caller,
        task=AI_TASK,
        prompt=prompt,
        max_tokens=marketing.campaign_ai_max_tokens,
    )
    text = str(answer.get("text", ""))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return {
        "text": text,
        "key_messages": lines[:_MESSAGE_LINES_MAX],
        "provider": str(answer.get("provider", "")),
        "model": str(answer.get("model", "")),
    }


def channel_plan(template: Template, channels: Sequence[str]) -> dict[str, Any]:
    """Each channel's tactics and messages, from the template."""
    body = TemplateBody.model_validate(template.body)
    return {
        "channels": {
            channel: {
                "tactics": body.channel_tactics.get(channel, body.default_tactics),
                "key_messages": body.key_messages,
            }
            for channel in channels
        }
    }


def schedule(template: Template, starts_on: date, ends_on: date) -> dict[str, Any]:
    """The template's phases laid over the campaign's days (both ends included)."""
    body = TemplateBody.model_validate(template.body)
    days = (ends_on - starts_on).days + 1
    phases: list[dict[str, Any]] = []
    done_percent = 0
    first_day = 0
    for phase in body.phases:
        done_percent += phase.share_percent
        end_day = days * done_percent // _PERCENT
        if end_day > first_day:  # a short campaign may have no day for a phase
            phases.append(
                {
                    "name": phase.name,
                    "starts_on": (starts_on + timedelta(days=first_day)).isoformat(),
                    "ends_on": (starts_on + timedelta(days=end_day - 1)).isoformat(),
                    "days": end_day - first_day,
                }
            )
            first_day = end_day
    return {"days": days, "phases": phases}


def utm_tags(template: Template, channels: Sequence[str], campaign_slug: str) -> dict[str, Any]:
    """UTM parameters per channel: source is the channel, campaign the slug."""
    body = TemplateBody.model_validate(template.body)
    return {
        "channels": {
            channel: {
                "utm_source": channel,
                "utm_medium": body.utm_medium.get(channel, channel),
                "utm_campaign": campaign_slug,
            }
            for channel in channels
        }
    }


def estimated_reach(
    budget: Decimal, channels: Sequence[str], reach_per_1000_budget: Mapping[str, int]
) -> dict[str, Any]:
    """People reached: the budget split evenly over the channels, at each one's figure."""
    share = budget / len(channels)
    per_channel = {
        channel: int(
            (share / _BUDGET_UNIT * reach_per_1000_budget[channel]).to_integral_value(ROUND_FLOOR)
        )
        for channel in channels
    }
    total = min(sum(per_channel.values()), _REACH_COLUMN_MAX)
    return {
        "total": total,
        "per_channel": per_channel,
        "budget_per_channel": str(share.quantize(_CENTS)),
    }
