"""Content endpoints of the ASO Engine."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response
from pydantic import AwareDatetime

from xynergy.aso_engine.auth import ContentReader, ContentWriter
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.content import service
from xynergy.aso_engine.content.schemas import (
    PHRASE_HARD_MAX,
    Content,
    ContentCount,
    ContentCreate,
    ContentFilters,
    ContentSort,
    ContentStatus,
    ContentUpdate,
    Priority,
)
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.session import SessionDep
from xynergy.platform.pagination import PageRequestDep
from xynergy.platform.routing import api_router
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["content"])


# Dependencies are async: a plain def would be sent to the thread pool per request.
async def _aso(request: Request) -> AsoSettings:
    settings: AsoSettings = request.app.state.aso
    return settings


async def _cache(request: Request) -> PlatformCache:
    cache: PlatformCache = request.app.state.platform.cache
    return cache


AsoDep = Annotated[AsoSettings, Depends(_aso)]
CacheDep = Annotated[PlatformCache, Depends(_cache)]


async def _filters(
    status: Annotated[ContentStatus | None, Query()] = None,
    priority: Annotated[Priority | None, Query()] = None,
    keyword: Annotated[str | None, Query(max_length=PHRASE_HARD_MAX)] = None,
    updated_since: Annotated[
        AwareDatetime | None, Query(description="Only pieces updated at or after this time.")
    ] = None,
) -> ContentFilters:
    return service.normalise_filters(
        status=status, priority=priority, keyword=keyword, updated_since=updated_since
    )


FiltersDep = Annotated[ContentFilters, Depends(_filters)]


@router.post("/content", status_code=201)
async def create_content(
    body: ContentCreate, session: SessionDep, auth: ContentWriter, aso: AsoDep, cache: CacheDep
) -> Content:
    """Create a content piece."""
    piece = await service.create_content(
        session, tenant_id=auth.tenant_id, data=body, aso=aso, cache=cache
    )
    return Content.model_validate(piece)


@router.get("/content")
async def list_content(
    session: SessionDep,
    auth: ContentReader,
    filters: FiltersDep,
    page: PageRequestDep,
    cache: CacheDep,
    sort: Annotated[
        ContentSort,
        Query(description="created: newest first; priority: highest first, then newest."),
    ] = "created",
) -> Page[Content]:
    """List content pieces, filtered and sorted, one cursor page at a time."""
    return await service.list_content(
        session, tenant_id=auth.tenant_id, filters=filters, sort=sort, page=page, cache=cache
    )


@router.get("/content/count")
async def count_content(
    session: SessionDep, auth: ContentReader, filters: FiltersDep, cache: CacheDep
) -> ContentCount:
    """Count the content pieces matching the same filters as the list."""
    count = await service.count_content(
        session, tenant_id=auth.tenant_id, filters=filters, cache=cache
    )
    return ContentCount(count=count)


@router.get("/content/{content_id}")
async def get_content(content_id: ResourceId, session: SessionDep, auth: ContentReader) -> Content:
    """One content piece."""
    piece = await service.get_content(session, tenant_id=auth.tenant_id, content_id=content_id)
    return Content.model_validate(piece)


@router.patch("/content/{content_id}")
async def update_content(
    content_id: ResourceId,
    body: ContentUpdate,
    session: SessionDep,
    auth: ContentWriter,
    aso: AsoDep,
    cache: CacheDep,
) -> Content:
    """Change some fields of a content piece."""
    piece = await service.update_content(
        session,
        tenant_id=auth.tenant_id,
        content_id=content_id,
        changes=body,
        aso=aso,
        cache=cache,
    )
    return Content.model_validate(piece)


@router.delete("/content/{content_id}", status_code=204)
async def delete_content(
    content_id: ResourceId, session: SessionDep, auth: ContentWriter, cache: CacheDep
) -> Response:
    """Delete a content piece."""
    await service.delete_content(
        session, tenant_id=auth.tenant_id, content_id=content_id, cache=cache
    )
    return Response(status_code=204)
