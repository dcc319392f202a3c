"""Campaign operations: validated generation in concurrent cached steps, life cycle, lists.

Generation validates everything first (a refusal writes nothing and calls
nothing), then runs the steps — the template chain (template, then
personalisation, channel plan, schedule and UTM tags side by side) alongside the
reach estimate — and only when every step has succeeded adds the campaign and
its step rows to the request's unit of work, which commits them together. Any
failure, an AI upstream outage included, leaves no campaign behind.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.campaigns import steps
from xynergy.marketing_engine.campaigns.lifecycle import INITIAL_STATUS, Action, next_status
from xynergy.marketing_engine.campaigns.repository import CampaignRepository
from xynergy.marketing_engine.campaigns.schemas import (
    Campaign,
    CampaignDetail,
    CampaignFilters,
    CampaignGenerate,
    CampaignStatus,
    CampaignStep,
)
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.models import Campaign as CampaignRow
from xynergy.marketing_engine.models import CampaignStep as CampaignStepRow
from xynergy.marketing_engine.templates.lookup import resolve_template
from xynergy.marketing_engine.templates.service import check_key
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.runtime import Platform
from xynergy.platform.schemas import Page
from xynergy.platform.text import sent_length

__all__ = [
    "STEP_ORDER",
    "change_status",
    "generate_campaign",
    "get_campaign",
    "list_campaigns",
    "normalise_filters",
    "validate_request",
]

STEP_ORDER = (
    "template",
    "personalise",
    "channel_plan",
    "schedule",
    "utm_tags",
    "estimated_reach",
)


def _check_chars(field: str, value: str, limit: int) -> None:
    if sent_length(value) > limit:
        raise ValidationFailed(f"{field}: at most {limit} characters are allowed.")


def validate_request(data: CampaignGenerate, marketing: MarketingSettings) -> steps.CampaignInput:
    """The request within every configured bound, normalised; ValidationFailed otherwise."""
    if len(data.goals) > marketing.goals_max:
        raise ValidationFailed(
            f"goals: at most {marketing.goals_max} goals are allowed (got {len(data.goals)})."
        )
    for index, goal in enumerate(data.goals):
        _check_chars(f"goals.{index}", goal, marketing.goal_max_chars)
    channels = tuple(dict.fromkeys(data.channels))
    if len(channels) > marketing.channels_max:
        raise ValidationFailed(f"channels: at most {marketing.channels_max} channels are allowed.")
    unknown = [channel for channel in channels if channel not in marketing.channels]
    if unknown:
        raise ValidationFailed(
            f"channels: unknown channel(s) {', '.join(unknown)}; "
            f"choose from {', '.join(marketing.channels)}."
        )
    _check_chars("audience", data.audience, marketing.audience_max_chars)
    _check_chars("tone", data.tone, marketing.text_field_max_chars)
    check_key("business_type", data.business_type, marketing)
    check_key("industry", data.industry, marketing)
    if data.ends_on < data.starts_on:
        raise ValidationFailed("ends_on: the campaign cannot end before it starts.")
    days = (data.ends_on - data.starts_on).days + 1
    if days > marketing.campaign_days_max:
        raise ValidationFailed(
            f"ends_on: a campaign may last at most {marketing.campaign_days_max} days "
            f"(this one lasts {days})."
        )
    if data.budget > marketing.budget_max:
        raise ValidationFailed(f"budget: at most {marketing.budget_max:g} is allowed.")
    name = data.name or (
        f"{data.business_type} {data.industry} campaign {data.starts_on.isoformat()}"
    )
    return steps.CampaignInput(
        name=name,
        business_type=data.business_type,
        industry=data.industry,
        goals=tuple(data.goals),
        channels=channels,
        audience=data.audience,
        tone=data.tone,
        starts_on=data.starts_on,
        ends_on=data.ends_on,
        budget=data.budget,
    )


async def _run_steps(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    request: steps.CampaignInput,
    marketing: MarketingSettings,
) -> list[steps.StepResult]:
    cache, tenant_id = platform.cache, caller.tenant_id

    async def template_chain() -> list[steps.StepResult]:
        resolved = await resolve_template(
            session,
            platform=platform,
            caller=caller,
            business_type=request.business_type,
            industry=request.industry,
            marketing=marketing,
        )
        template = resolved.template
        first = steps.StepResult(
            name="template", output=template.model_dump(mode="json"), reused=not resolved.computed
        )
        prompt = steps.personalise_prompt(template, request)
        campaign_slug = steps.slug(request.name)

        async def personalised() -> dict[str, Any]:
            return await steps.personalise(
                platform.services, caller=caller, prompt=prompt, marketing=marketing
            )

        async def plan() -> dict[str, Any]:
            return steps.channel_plan(template, request.channels)

        async def timed() -> dict[str, Any]:
            return steps.schedule(template, request.starts_on, request.ends_on)

        async def tagged() -> dict[str, Any]:
            return steps.utm_tags(template, request.channels, campaign_slug)

        # The template is part of every key, so a new version never reuses old outputs.
        basis = {"template": first.output}
        rest = await asyncio.gather(
            steps.run_step(
                cache,
                tenant_id=tenant_id,
                name="personalise",
                inputs={"prompt": prompt, "max_tokens": marketing.campaign_ai_max_tokens},
                compute=personalised,
            ),
            steps.run_step(
                cache,
                tenant_id=tenant_id,
                name="channel_plan",
                inputs={**basis, "channels": request.channels},
                compute=plan,
            ),
            steps.run_step(
                cache,
                tenant_id=tenant_id,
                name="schedule",
                inputs={**basis, "from": request.starts_on, "to": request.ends_on},
                compute=timed,
            ),
            steps.run_step(
                cache,
                tenant_id=tenant_id,
                name="utm_tags",
                inputs={**basis, "channels": request.channels, "slug": campaign_slug},
                compute=tagged,
            ),
        )
        return [first, *rest]

    async def reach() -> dict[str, Any]:
        return steps.estimated_reach(
            request.budget, request.channels, marketing.reach_per_1000_budget
        )

    chain, reached = await asyncio.gather(
        template_chain(),
        steps.run_step(
            cache,
            tenant_id=tenant_id,
            name="estimated_reach",
            inputs={
                "budget": str(request.budget),
                "channels": request.channels,
                "figures": {c: marketing.reach_per_1000_budget[c] for c in request.channels},
            },
            compute=reach,
        ),
    )
    return [*chain, reached]


async def generate_campaign(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    data: CampaignGenerate,
    marketing: MarketingSettings,
) -> CampaignDetail:
    """Generate a draft campaign for the caller's tenant and store it with its steps."""
    request = validate_request(data, marketing)
    results = await _run_steps(
        session, platform=platform, caller=caller, request=request, marketing=marketing
    )
    outputs = {result.name: result.output for result in results}
    template = outputs["template"]
    plan = {
        "template": {
            key: template[key] for key in ("id", "business_type", "industry", "version", "source")
        },
        "key_messages": outputs["personalise"]["key_messages"],
        "channels": outputs["channel_plan"]["channels"],
        "schedule": outputs["schedule"],
        "utm": outputs["utm_tags"]["channels"],
        "reach": outputs["estimated_reach"],
    }
    now = utcnow()
    campaign = CampaignRow(
        id=new_id(),
        tenant_id=caller.tenant_id,
        status=INITIAL_STATUS,
        name=request.name,
        business_type=request.business_type,
        industry=request.industry,
        goals=list(request.goals),
        channels=list(request.channels),
        audience=request.audience,
        tone=request.tone,
        starts_on=request.starts_on,
        ends_on=request.ends_on,
        budget=request.budget,
        request_hash=steps.inputs_hash(request.as_json()),
        plan=plan,
        estimated_reach=int(outputs["estimated_reach"]["total"]),
        created_at=now,
        updated_at=now,
    )
    step_rows = [
        CampaignStepRow(
            tenant_id=caller.tenant_id,
            campaign_id=campaign.id,
            name=result.name,
            output=result.output,
            reused=result.reused,
            created_at=now,
        )
        for result in results
    ]
    await CampaignRepository(session).add(campaign, step_rows)
    return _detail(campaign, step_rows)


def _detail(campaign: CampaignRow, rows: list[CampaignStepRow]) -> CampaignDetail:
    ordered = sorted(rows, key=lambda row: STEP_ORDER.index(row.name))
    return CampaignDetail.model_validate(
        {
            **Campaign.model_validate(campaign).model_dump(),
            "steps": [CampaignStep.model_validate(row) for row in ordered],
        }
    )


async def _owned(session: AsyncSession, *, tenant_id: str, campaign_id: str) -> CampaignRow:
    campaign = await CampaignRepository(session).get(tenant_id=tenant_id, campaign_id=campaign_id)
    if campaign is None:
        raise NotFound("No such campaign.")
    return campaign


async def get_campaign(
    session: AsyncSession, *, tenant_id: str, campaign_id: str
) -> CampaignDetail:
    """A campaign of ``tenant_id`` with its steps; another tenant's id answers NotFound."""
    campaign = await _owned(session, tenant_id=tenant_id, campaign_id=campaign_id)
    rows = await CampaignRepository(session).steps(
        tenant_id=tenant_id, campaign_id=campaign_id, limit=len(STEP_ORDER)
    )
    return _detail(campaign, list(rows))


async def change_status(
    session: AsyncSession, *, tenant_id: str, campaign_id: str, action: Action
) -> Campaign:
    """Move a campaign along its life cycle; Conflict when the move is not allowed."""
    campaign = await _owned(session, tenant_id=tenant_id, campaign_id=campaign_id)
    campaign.status = next_status(campaign.status, action)
    campaign.updated_at = utcnow()
    await CampaignRepository(session).flush()
    return Campaign.model_validate(campaign)


def normalise_filters(
    *,
    status: CampaignStatus | None,
    business_type: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
) -> CampaignFilters:
    """The list filters with times in UTC."""
    try:
        after = created_after.astimezone(UTC) if created_after else None
        before = created_before.astimezone(UTC) if created_before else None
    except (OverflowError, ValueError) as exc:
        raise ValidationFailed("created_after/created_before is out of range.") from exc
    return CampaignFilters(
        status=status,
        business_type=business_type.strip().lower() if business_type else None,
        created_after=after,
        created_before=before,
    )


async def list_campaigns(
    session: AsyncSession, *, tenant_id: str, filters: CampaignFilters, params: PageParams
) -> Page[Campaign]:
    """One newest-first page of ``tenant_id``'s campaigns."""
    rows = await CampaignRepository(session).page(
        tenant_id=tenant_id, filters=filters, params=params
    )
    items, cursor = split_page(rows, params, lambda c: (c.created_at, c.id))
    return Page[Campaign](
        items=[Campaign.model_validate(item) for item in items], next_cursor=cursor
    )
