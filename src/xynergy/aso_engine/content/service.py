"""Content operations: bounds, normalisation, cached lists.

Title, author and body arrive sanitised by their schema types
(:mod:`xynergy.platform.text`); the configured bounds apply to what was sent.

Functions only flush; the request's unit of work commits. Every write registers
the invalidation of the tenant's cached lists and counts to run *after* that
commit, so no reader can re-cache the state from before the write.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.content.repository import ContentRepository
from xynergy.aso_engine.content.schemas import (
    Content,
    ContentCreate,
    ContentFilters,
    ContentSort,
    ContentStatus,
    ContentUpdate,
    Priority,
)
from xynergy.aso_engine.models import ContentPiece
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import NotFound, ValidationFailed
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageRequest, split_keyset_page, split_page
from xynergy.platform.schemas import Page
from xynergy.platform.text import sent_length

__all__ = [
    "CACHE_NAMESPACE",
    "PRIORITY_RANKS",
    "count_content",
    "create_content",
    "delete_content",
    "get_content",
    "list_content",
    "normalise_filters",
    "normalise_phrase",
    "update_content",
]

log = get_logger(__name__)

CACHE_NAMESPACE = "content"
PRIORITY_RANKS = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
_PRIORITY_KEYSET_KINDS = (int, datetime, str)
# Bumped when the cached page shape changes, so old entries are never read back.
_CACHE_SHAPE = 1


def normalise_phrase(text: str) -> str:
    """A keyword as stored and matched: NFKC, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _normalise_keywords(raw: Sequence[str], aso: AsoSettings) -> list[str]:
    phrases: list[str] = []
    seen: set[str] = set()
    for index, text in enumerate(raw):
        phrase = normalise_phrase(text)
        if not phrase:
            raise ValidationFailed(f"target_keywords.{index}: a keyword cannot be blank.")
        if len(phrase) > aso.keyword_phrase_max_chars:
            raise ValidationFailed(
                f"target_keywords.{index}: a keyword may have at most "
                f"{aso.keyword_phrase_max_chars} characters."
            )
        if phrase not in seen:
            seen.add(phrase)
            phrases.append(phrase)
    if len(phrases) > aso.content_keywords_max:
        raise ValidationFailed(
            f"target_keywords: at most {aso.content_keywords_max} distinct keywords."
        )
    return phrases


def _check_title(title: str, aso: AsoSettings) -> str:
    if sent_length(title) > aso.content_title_max_chars:
        raise ValidationFailed(
            f"title: at most {aso.content_title_max_chars} characters are allowed."
        )
    return title


def _check_body(body: str, aso: AsoSettings) -> str:
    # The bound applies to what the client sent; sanitising may have shortened it
    # (dropped markup) or lengthened it slightly (escaped entities).
    if sent_length(body) > aso.content_body_max_chars:
        raise ValidationFailed(
            f"body: at most {aso.content_body_max_chars} characters are allowed."
        )
    return body


def _lists_tag(cache: PlatformCache, tenant_id: str) -> str:
    return cache.tag(CACHE_NAMESPACE, tenant_id, "lists")


def _invalidate_lists_after_commit(
    session: AsyncSession, cache: PlatformCache, tenant_id: str
) -> None:
    tag = _lists_tag(cache, tenant_id)

    async def invalidate() -> None:
        # The write is committed by now: failing the request would invite a
        # retry (a duplicate create). A missed invalidation is bounded by the TTL.
        try:
            await cache.invalidate(tag)
        except Exception as exc:
            log.warning("content.cache_invalidation_failed", tenant_id=tenant_id, error=repr(exc))

    on_commit(session, invalidate)


async def create_content(
    session: AsyncSession,
    *,
    tenant_id: str,
    data: ContentCreate,
    aso: AsoSettings,
    cache: PlatformCache,
) -> ContentPiece:
    """Create a content piece for ``tenant_id``."""
    now = utcnow()
    piece = ContentPiece(
        tenant_id=tenant_id,
        title=_check_title(data.title, aso),
        body=_check_body(data.body, aso),
        status=data.status,
        priority=data.priority,
        priority_rank=PRIORITY_RANKS[data.priority],
        target_keywords=_normalise_keywords(data.target_keywords, aso),
        author=data.author,
        created_at=now,
        updated_at=now,
    )
    await ContentRepository(session).add(piece)
    _invalidate_lists_after_commit(session, cache, tenant_id)
    return piece


async def get_content(session: AsyncSession, *, tenant_id: str, content_id: str) -> ContentPiece:
    """A content piece of ``tenant_id``; another tenant's id answers NotFound."""
    piece = await ContentRepository(session).get(tenant_id=tenant_id, content_id=content_id)
    if piece is None:
        raise NotFound("No such content.")
    return piece


async def update_content(
    session: AsyncSession,
    *,
    tenant_id: str,
    content_id: str,
    changes: ContentUpdate,
    aso: AsoSettings,
    cache: PlatformCache,
) -> ContentPiece:
    """Change the fields sent in ``changes``; the others keep their values."""
    # Everything is validated before the row is touched: a refusal writes nothing.
    title = _check_title(changes.title, aso) if changes.title is not None else None
    body = _check_body(changes.body, aso) if changes.body is not None else None
    keywords = (
        _normalise_keywords(changes.target_keywords, aso)
        if changes.target_keywords is not None
        else None
    )
    repository = ContentRepository(session)
    piece = await get_content(session, tenant_id=tenant_id, content_id=content_id)
    if title is not None:
        piece.title = title
    if body is not None:
        piece.body = body
    if changes.status is not None:
        piece.status = changes.status
    if changes.priority is not None:
        piece.priority = changes.priority
        piece.priority_rank = PRIORITY_RANKS[changes.priority]
    if changes.author is not None:
        piece.author = changes.author
    if keywords is not None:
        piece.target_keywords = keywords
        await repository.replace_keywords(piece)
    piece.updated_at = utcnow()
    await repository.flush()
    _invalidate_lists_after_commit(session, cache, tenant_id)
    return piece


async def delete_content(
    session: AsyncSession, *, tenant_id: str, content_id: str, cache: PlatformCache
) -> None:
    """Delete a content piece and its keyword rows."""
    piece = await get_content(session, tenant_id=tenant_id, content_id=content_id)
    await ContentRepository(session).delete(piece)
    _invalidate_lists_after_commit(session, cache, tenant_id)


def normalise_filters(
    *,
    status: ContentStatus | None,
    priority: Priority | None,
    keyword: str | None,
    updated_since: datetime | None,
) -> ContentFilters:
    """The filters in the one form used for both the query and the cache key."""
    since = None
    if updated_since is not None:
        try:
            since = updated_since.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise ValidationFailed("updated_since is out of range.") from exc
    return ContentFilters(
        status=status,
        priority=priority,
        keyword=normalise_phrase(keyword) if keyword is not None else None,
        updated_since=since,
    )


async def list_content(
    session: AsyncSession,
    *,
    tenant_id: str,
    filters: ContentFilters,
    sort: ContentSort,
    page: PageRequest,
    cache: PlatformCache,
) -> Page[Content]:
    """One page of ``tenant_id``'s content, from the cache when it is there."""

    async def compute() -> dict[str, Any]:
        repository = ContentRepository(session)
        cursor: str | None
        if sort == "priority":
            rows = await repository.page_by_priority(
                tenant_id=tenant_id,
                filters=filters,
                after=page.after(_PRIORITY_KEYSET_KINDS),
                limit=page.limit,
            )
            items, cursor = split_keyset_page(
                rows, page.limit, lambda c: (c.priority_rank, c.created_at, c.id)
            )
        else:
            params = page.created_params()
            rows = await repository.page_by_created(
                tenant_id=tenant_id, filters=filters, params=params
            )
            items, cursor = split_page(rows, params, lambda c: (c.created_at, c.id))
        result = Page[Content](
            items=[Content.model_validate(item) for item in items], next_cursor=cursor
        )
        return result.model_dump(mode="json")

    parts = ["list", _CACHE_SHAPE, sort, filters.model_dump(mode="json"), page.limit, page.cursor]
    value = await cache.get_or_compute(
        namespace=CACHE_NAMESPACE,
        tenant_id=tenant_id,
        parts=parts,
        compute=compute,
        tags=[_lists_tag(cache, tenant_id)],
    )
    return Page[Content].model_validate(value)


async def count_content(
    session: AsyncSession, *, tenant_id: str, filters: ContentFilters, cache: PlatformCache
) -> int:
    """How many of ``tenant_id``'s content pieces match ``filters`` (one SQL COUNT)."""

    async def compute() -> int:
        return await ContentRepository(session).count(tenant_id=tenant_id, filters=filters)

    value = await cache.get_or_compute(
        namespace=CACHE_NAMESPACE,
        tenant_id=tenant_id,
        parts=["count", _CACHE_SHAPE, filters.model_dump(mode="json")],
        compute=compute,
        tags=[_lists_tag(cache, tenant_id)],
    )
    return int(value)
