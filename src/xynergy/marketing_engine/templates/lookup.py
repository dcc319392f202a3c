"""Finding the template for a business type and industry (cached 24 h).

A template is the tenant's latest version for that industry, then its latest
"generic" one, then the built-in template of the business type. Finding one
never calls the AI engine and never writes: a pair with none is NotFound. Only
campaign generation, itself in the ``ai_generate`` rate class, may instead
draft a missing template with AI (stored as the next version, source "ai").
Both are cached under the business type's tag, which every write invalidates.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.templates.builtin import GENERIC_INDUSTRY, builtin_template
from xynergy.marketing_engine.templates.drafts import draft_body
from xynergy.marketing_engine.templates.repository import TemplateRepository
from xynergy.marketing_engine.templates.schemas import Template
from xynergy.marketing_engine.templates.service import (
    CACHE_NAMESPACE,
    add_version,
    builtin_entry,
    from_row,
    type_tag,
)
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound
from xynergy.platform.runtime import Platform

__all__ = ["ResolvedTemplate", "find_template", "resolve_template", "warm_template"]

# Bumped when the cached shape changes, so old entries are never read back.
_CACHE_SHAPE = 1


async def find_template(
    session: AsyncSession,
    *,
    cache: PlatformCache,
    tenant_id: str,
    business_type: str,
    industry: str,
) -> Template:
    """The tenant's stored template or the built-in one, cached; never drafts or writes.

    Raises:
        NotFound: the tenant has none for this pair and there is no built-in one.
    """

    async def compute() -> dict[str, Any]:
        template = await _stored_or_builtin(
            session, tenant_id=tenant_id, business_type=business_type, industry=industry
        )
        if template is None:
            # Raised inside the computation: a miss is never cached.
            raise NotFound(
                f"No template for {business_type}/{industry}: store one with PUT, or draft "
                "one with AI with POST .../draft."
            )
        return template.model_dump(mode="json")

    # Its own key: a campaign's resolution (which may draft) never waits for, or
    # shares, a lookup's NotFound.
    value = await cache.get_or_compute(
        CACHE_NAMESPACE,
        tenant_id,
        ["found", _CACHE_SHAPE, business_type, industry],
        compute,
        tags=[type_tag(cache, tenant_id, business_type)],
    )
    return Template.model_validate(value)


class ResolvedTemplate:
    """A resolved template and whether this request resolved it (False: from the cache)."""

    __slots__ = ("computed", "template")

    def __init__(self, template: Template, *, computed: bool) -> None:
        self.template = template
        self.computed = computed


async def resolve_template(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> ResolvedTemplate:
    """The template a campaign for this business type and industry starts from.

    Drafted with AI (and stored) when there is none: only campaign generation,
    itself in the ``ai_generate`` rate class, calls this.
    """
    tenant_id = caller.tenant_id
    computed = False

    async def compute() -> dict[str, Any]:
        nonlocal computed
        computed = True
        template = await _resolve_uncached(
            session,
            platform=platform,
            caller=caller,
            business_type=business_type,
            industry=industry,
            marketing=marketing,
        )
        return template.model_dump(mode="json")

    value = await platform.cache.get_or_compute(
        CACHE_NAMESPACE,
        tenant_id,
        ["resolved", _CACHE_SHAPE, business_type, industry],
        compute,
        tags=[type_tag(platform.cache, tenant_id, business_type)],
    )
    return ResolvedTemplate(Template.model_validate(value), computed=computed)


async def warm_template(
    session: AsyncSession,
    *,
    cache: PlatformCache,
    tenant_id: str,
    business_type: str,
    industry: str,
) -> bool:
    """Fill both cached answers for this pair (lookup and campaign); never drafts.

    Returns False when the pair has no stored or built-in template (nothing cached).
    """
    try:
        await find_template(
            session,
            cache=cache,
            tenant_id=tenant_id,
            business_type=business_type,
            industry=industry,
        )
    except NotFound:
        return False

    async def compute() -> dict[str, Any]:
        # Read again rather than reuse the lookup's value: that one may predate a
        # write whose invalidation this computation's tag check would then miss.
        template = await _stored_or_builtin(
            session, tenant_id=tenant_id, business_type=business_type, industry=industry
        )
        if template is None:
            raise NotFound(f"No template for {business_type}/{industry}.")
        return template.model_dump(mode="json")

    try:
        await cache.get_or_compute(
            CACHE_NAMESPACE,
            tenant_id,
            ["resolved", _CACHE_SHAPE, business_type, industry],
            compute,
            tags=[type_tag(cache, tenant_id, business_type)],
        )
    except NotFound:  # deleted between the two reads
        return False
    return True


async def _stored_or_builtin(
    session: AsyncSession, *, tenant_id: str, business_type: str, industry: str
) -> Template | None:
    repository = TemplateRepository(session)
    for candidate in dict.fromkeys((industry, GENERIC_INDUSTRY)):
        row = await repository.latest(
            tenant_id=tenant_id, business_type=business_type, industry=candidate
        )
        if row is not None:
            return from_row(row)
    body = builtin_template(business_type)
    if body is not None:
        return builtin_entry(business_type, body)
    return None


async def _resolve_uncached(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> Template:
    template = await _stored_or_builtin(
        session, tenant_id=caller.tenant_id, business_type=business_type, industry=industry
    )
    if template is not None:
        return template
    body = await draft_body(
        platform=platform,
        caller=caller,
        business_type=business_type,
        industry=industry,
        marketing=marketing,
    )
    # Stored in its own unit of work: a draft is worth keeping (it was paid for)
    # even when the campaign that asked for it fails later.
    async with unit_of_work(platform.sessionmaker) as own:
        row = await add_version(
            own,
            tenant_id=caller.tenant_id,
            business_type=business_type,
            industry=industry,
            body=body,
            source="ai",
            cache=platform.cache,
        )
    return from_row(row)
