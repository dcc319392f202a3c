"""Template writes (versioned, cache invalidated after commit), AI drafts on request, listing.

Every write to a business type invalidates its cache tag after the commit, so
lookups (``lookup.py``) never serve a replaced version past it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.marketing_engine.config import MarketingSettings
from xynergy.marketing_engine.models import CampaignTemplate
from xynergy.marketing_engine.templates.builtin import (
    BUILTIN_TEMPLATES,
    BUILTIN_VERSION,
    GENERIC_INDUSTRY,
    builtin_template,
)
from xynergy.marketing_engine.templates.drafts import draft_body
from xynergy.marketing_engine.templates.repository import TemplateRepository
from xynergy.marketing_engine.templates.schemas import Template, TemplateBody
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import Conflict, ValidationFailed
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageParams, encode_cursor
from xynergy.platform.runtime import Platform
from xynergy.platform.schemas import Page

__all__ = [
    "CACHE_NAMESPACE",
    "add_version",
    "builtin_entry",
    "check_key",
    "create_template",
    "draft_template",
    "from_row",
    "list_templates",
    "type_tag",
]

log = get_logger(__name__)

CACHE_NAMESPACE = "marketing-templates"
# Built-in templates sort after every stored one in the newest-first list.
_BUILTIN_CREATED = datetime(1970, 1, 1, tzinfo=UTC)


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


def type_tag(cache: PlatformCache, tenant_id: str, business_type: str) -> str:
    """The cache tag of the tenant's templates of one business type."""
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


def builtin_entry(business_type: str, body: dict[str, Any]) -> Template:
    """The built-in template of ``business_type`` as the API shows it."""
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
    return await add_version(
        session,
        tenant_id=tenant_id,
        business_type=business_type,
        industry=industry,
        body=_check_body(body, marketing),
        source="custom",
        cache=cache,
    )


async def add_version(
    session: AsyncSession,
    *,
    tenant_id: str,
    business_type: str,
    industry: str,
    body: dict[str, Any],
    source: str,
    cache: PlatformCache,
) -> CampaignTemplate:
    repository = TemplateRepository(session)
    version = await repository.latest_version(
        tenant_id=tenant_id, business_type=business_type, industry=industry
    )
    row = CampaignTemplate(
        tenant_id=tenant_id,
        business_type=business_type,
        industry=industry,
        version=version + 1,
        source=source,
        body=body,
        created_at=utcnow(),
    )
    try:
        await repository.add(row)
    except IntegrityError as exc:
        raise Conflict("Another change to this template landed first; try again.") from exc
    tag = type_tag(cache, tenant_id, business_type)

    async def invalidate() -> None:
        # Committed already: a missed invalidation is bounded by the TTL.
        try:
            await cache.invalidate(tag)
        except Exception as exc:
            log.warning("templates.cache_invalidation_failed", tenant_id=tenant_id, error=repr(exc))

    on_commit(session, invalidate)
    return row


async def draft_template(
    session: AsyncSession,
    *,
    platform: Platform,
    caller: AuthContext,
    business_type: str,
    industry: str,
    marketing: MarketingSettings,
) -> CampaignTemplate:
    """Draft the next version of this template with AI and store it (source "ai")."""
    check_key("business_type", business_type, marketing)
    check_key("industry", industry, marketing)
    # The AI call comes before any write: no transaction is open while it runs.
    body = await draft_body(
        platform=platform,
        caller=caller,
        business_type=business_type,
        industry=industry,
        marketing=marketing,
    )
    return await add_version(
        session,
        tenant_id=caller.tenant_id,
        business_type=business_type,
        industry=industry,
        body=body,
        source="ai",
        cache=platform.cache,
    )


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
                entries.append((*position, builtin_entry(business_type, body)))
    page = entries[: params.limit]
    cursor = None
    if len(entries) > params.limit and page:
        created, row_id, _ = page[-1]
        cursor = encode_cursor(created, row_id)
    return Page[Template](items=[template for _, _, template in page], next_cursor=cursor)
