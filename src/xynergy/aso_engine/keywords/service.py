"""Keyword operations, shared by the API and the CLI. Functions only flush."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords.importer import import_keywords
from xynergy.aso_engine.keywords.repository import KeywordRepository
from xynergy.aso_engine.keywords.rules import KeywordInvalid, clean_keyword
from xynergy.aso_engine.keywords.schemas import KeywordCreate, KeywordFilters
from xynergy.aso_engine.models import Keyword
from xynergy.aso_engine.rankings.service import trending_tag
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import Conflict, NotFound, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page

__all__ = [
    "create_keyword",
    "delete_keyword",
    "get_keyword",
    "import_keywords",
    "list_keywords",
]

_NOT_FOUND = "No such keyword."


async def create_keyword(
    session: AsyncSession, *, tenant_id: str, data: KeywordCreate, bounds: AsoSettings
) -> Keyword:
    """Create a keyword in canonical form; a phrase+locale the tenant has is a Conflict."""
    try:
        clean = clean_keyword(
            phrase=data.phrase,
            locale=data.locale,
            tags=data.tags,
            target_url=data.target_url,
            intent=data.intent,
            bounds=bounds,
        )
    except KeywordInvalid as exc:
        raise ValidationFailed(f"{exc}.") from exc
    conflict = Conflict(f"The keyword already exists for locale {clean.locale}.")
    repository = KeywordRepository(session)
    if await repository.exists(tenant_id, clean.phrase, clean.locale):
        raise conflict
    now = utcnow()
    keyword = Keyword(
        tenant_id=tenant_id,
        phrase=clean.phrase,
        locale=clean.locale,
        tags=clean.tags,
        target_url=clean.target_url,
        intent=clean.intent,
        created_at=now,
        updated_at=now,
    )
    try:
        # A savepoint: losing a race to a concurrent create leaves the request's
        # transaction usable, and the answer is the same 409.
        async with session.begin_nested():
            return await repository.add(keyword)
    except IntegrityError as exc:
        raise conflict from exc


async def get_keyword(session: AsyncSession, *, tenant_id: str, keyword_id: str) -> Keyword:
    """One of the tenant's keywords; another tenant's id is NotFound."""
    keyword = await KeywordRepository(session).get_for_tenant(keyword_id, tenant_id)
    if keyword is None:
        raise NotFound(_NOT_FOUND)
    return keyword


async def list_keywords(
    session: AsyncSession, *, tenant_id: str, filters: KeywordFilters, params: PageParams
) -> tuple[list[Keyword], str | None]:
    """One page of the tenant's keywords, newest first."""
    rows = await KeywordRepository(session).page_for_tenant(tenant_id, filters, params)
    return split_page(rows, params, lambda k: (k.created_at, k.id))


async def delete_keyword(
    session: AsyncSession, *, tenant_id: str, keyword_id: str, cache: PlatformCache
) -> None:
    """Delete one of the tenant's keywords (and, by cascade, its rankings)."""
    if not await KeywordRepository(session).delete_for_tenant(keyword_id, tenant_id):
        raise NotFound(_NOT_FOUND)
    # Its rankings went with it, so the tenant's trending results are stale; as
    # with a rankings write, they are dropped after the commit.
    tag = trending_tag(cache, tenant_id)
    on_commit(session, lambda: cache.invalidate(tag))
