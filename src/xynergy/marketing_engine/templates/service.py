"""Template operations: versioned writes, resolution (cached 24 h), AI drafts.

Resolution order for a business type and industry: the tenant's latest version
for that industry, then its latest "generic" one, then the built-in template of
the business type, then an AI draft (stored as a source "ai" version). Every
resolved template is cached under a tag of its business type, and every write
to that business type invalidates the tag after its commit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.clients import generate_text
from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.models import CampaignTemplate
from xynergy.marketing_engine.templates.builtin import (
    BUILTIN_TEMPLATES,
    BUILTIN_VERSION,
    DEFAULT_PHASES,
    GENERIC_INDUSTRY,
    builtin_template,
)
from xynergy.marketing_engine.templates.repository import TemplateRepository
from xynergy.marketing_engine.templates.schemas import Template, TemplateBody
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit, unit_of_work
from xynergy.platform.exceptions import Conflict, ValidationFailed
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageParams, encode_cursor
from xynergy.platform.runtime import Platform
from xynergy.platform.schemas import Page

__all__ = [
    "CACHE_NAMESPACE",
    "ResolvedTemplate",
    "check_key",
    "create_template",
    "from_row",
    "list_templates",
    "resolve_template",
]

log = get_logger(__name__)

CACHE_NAMESPACE = "marketing-templates"
# Bumped when the cached shape changes, so old entries are never read back.
_CACHE_SHAPE = 1
# Built-in templates sort after every stored one in the newest-first list.
_BUILTIN_CREATED = datetime(1970, 1, 1, tzinfo=UTC)
_DRAFT_LINE_MAX = 500
_DRAFT_LINES_MAX = 20


def check_key(field: str, value: str, marketing: MarketingSettings) -> str:
    """A business type or industry within the configured length."""
    if len(value) > marketing.text_field_max_chars:
        raise ValidationFailed(
            f"{field}: at most {marketing.text_field_max_chars} characters are allowed."
        )
    return value


def _check_body(body: TemplateBody, marketing: MarketingSettings) -> dict[str, Any]:
    plain = body.model_dump(mode="json")
    size = len(json.dumps(plain, separators=(",", ":")))
    if size > marketing.template_body_max_chars:
        raise ValidationFailed(
            f"body: at most {marketing.template_body_max_chars} characters of JSON "
            f"are allowed (this one has {size})."
        )
    return plain


def _type_tag(cache: PlatformCache, tenant_id: str, business_type: str) -> str:
    return cache.tag(CACHE_NAMESPACE, tenant_id, "type:" + business_type)


def from_row(row: CampaignTemplate) -> Template:
    return Template(
        id=row.id,
        business_type=row.business_type,
        industry=row.industry,
        version=row.version,
        source="ai" if row.source == "ai" else "custom",
        body=row.body,
        created_at=row.created_at,
    )


def _builtin_id(business_type: str) -> str:
    return f"builtin:{business_type}:{GENERIC_INDUSTRY}"


def _builtin(business_type: str, body: dict[str, Any]) -> Template:
    return Template(
        id=_builtin_id(business_type),
        business_type=business_type,
        industry=GENERIC_INDUSTRY,
        version=BUILTIN_VERSION,
        source="builtin",
        body=body,
        created_at=None,
    )


async def create_template(
    session: AsyncSession,
    *,
    tenant_id: str,
    business_type: str,
    industry: str,
    body: TemplateBody,
    marketing: MarketingSettings,
    cache: PlatformCache,
) -> CampaignTemplate:
    """A new version of the tenant's template for this business type and industry."""
    check_key("business_type", business_type, marketing)
    check_key("industry", industry, marketing)
    plain = _check_body(body, marketing)
    repository = TemplateRepository(session)
    version = await repository.latest_version(
        tenant_id=tenant_id, business_type=business_type, industry=industry
    )
    row = CampaignTemplate(
        tenant_id=tenant_id,
        business_type=business_type,
        industry=industry,
        version=version + 1,
        source="custom",
        body=plain,
        created_at=utcnow(),
    )
    try:
        await repository.add(row)
    except IntegrityError as exc:
        raise Conflict("Another change to this template landed first; try again.") from exc
    tag = _type_tag(cache, tenant_id, business_type)

    async def invalidate() -> None:
        # Committed already: a missed invalidation is bounded by the TTL.
        try:
            await cache.invalidate(tag)
        except Exception as exc:
            log.warning("templates.cache_invalidation_failed", tenant_id=tenant_id, error=repr(exc))

    on_commit(session, invalidate)
    return row


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
    """The template a campaign for this business type and industry starts from."""
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
        tags=[_type_tag(platform.cache, tenant_id, business_type)],
    )
    return ResolvedTemplate(Template.model_validate(value), computed=computed)


async def _resolve_uncached(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> Template:
    repository = TemplateRepository(session)
    tenant_id = caller.tenant_id
    for candidate in dict.fromkeys((industry, GENERIC_INDUSTRY)):
        row = await repository.latest(
            tenant_id=tenant_id, business_type=business_type, industry=candidate
        )
        if row is not None:
            return from_row(row)
    body = builtin_template(business_type)
    if body is not None:
        return _builtin(business_type, body)
    return await _draft(
        platform=platform,
        caller=caller,
        business_type=business_type,
        industry=industry,
        marketing=marketing,
    )


async def _draft(
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> Template:
    """An AI-drafted template, stored as the tenant's next version for this key.

    Stored in its own unit of work: a draft is worth keeping (it was paid for)
    even when the campaign that asked for it fails later.
    """
    answer = await generate_text(
        platform.services,
        caller=caller,
        task="campaign",
        prompt=(
            f"Draft marketing campaign key messages for a {business_type} business "
            f"in the {industry} industry, one per line."
        ),
        max_tokens=marketing.campaign_ai_max_tokens,
    )
    lines = [
        line.strip()[:_DRAFT_LINE_MAX]
        for line in str(answer.get("text", "")).splitlines()
        if line.strip()
    ][:_DRAFT_LINES_MAX]
    summary = f"AI-drafted template for {business_type} ({industry})."
    body = TemplateBody.model_validate(
        {
            "summary": summary,
            "key_messages": lines or [summary],
            "default_tactics": lines or [summary],
            "phases": list(DEFAULT_PHASES),
        }
    ).model_dump(mode="json")
    async with unit_of_work(platform.sessionmaker) as own:
        repository = TemplateRepository(own)
        version = await repository.latest_version(
            tenant_id=caller.tenant_id, business_type=business_type, industry=industry
        )
        row = CampaignTemplate(
            tenant_id=caller.tenant_id,
            business_type=business_type,
            industry=industry,
            version=version + 1,
            source="ai",
            body=body,
            created_at=utcnow(),
        )
        await repository.add(row)
    return from_row(row)


async def list_templates(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> Page[Template]:
    """The tenant's latest versions, newest first, then the built-in templates."""
    rows = await TemplateRepository(session).page_latest(tenant_id=tenant_id, params=params)
    entries: list[tuple[datetime, str, Template]] = [
        (row.created_at, row.id, from_row(row)) for row in rows
    ]
    builtins = sorted(BUILTIN_TEMPLATES, key=_builtin_id, reverse=True)
    for business_type in builtins:
        position = (_BUILTIN_CREATED, _builtin_id(business_type))
        if params.after is None or position < params.after:
            body = builtin_template(business_type)
            if body is not None:
                entries.append((*position, _builtin(business_type, body)))
    page = entries[: params.limit]
    cursor = None
    if len(entries) > params.limit and page:
        created, row_id, _ = page[-1]
        cursor = encode_cursor(created, row_id)
    return Page[Template](items=[template for _, _, template in page], next_cursor=cursor)
