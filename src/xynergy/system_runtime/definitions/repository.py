"""Queries of tenants' stored definitions; every one bounded by a LIMIT or an aggregate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from xynergy.platform.pagination import PageParams, created_page_rows
from xynergy.system_runtime.models import WorkflowDefinition

__all__ = [
    "count_names",
    "count_versions",
    "created_at",
    "latest_version",
    "page_latest",
    "page_versions",
]


async def latest_version(session: AsyncSession, *, tenant_id: str, name: str) -> int | None:
    """The highest stored version of ``name``, None when the tenant has none."""
    return await session.scalar(
        select(func.max(WorkflowDefinition.version)).where(
            WorkflowDefinition.tenant_id == tenant_id, WorkflowDefinition.name == name
        )
    )


async def count_versions(session: AsyncSession, *, tenant_id: str, name: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            WorkflowDefinition.tenant_id == tenant_id, WorkflowDefinition.name == name
        )
    )
    return int(count or 0)


async def count_names(session: AsyncSession, *, tenant_id: str) -> int:
    """How many distinct definitions (names) the tenant has."""
    count = await session.scalar(
        select(func.count(func.distinct(WorkflowDefinition.name))).where(
            WorkflowDefinition.tenant_id == tenant_id
        )
    )
    return int(count or 0)


async def page_latest(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> Sequence[WorkflowDefinition]:
    """One page (plus one row) of each definition's latest version, newest first."""
    newer = aliased(WorkflowDefinition)
    has_newer = (
        select(newer.id)
        .where(
            newer.tenant_id == WorkflowDefinition.tenant_id,
            newer.name == WorkflowDefinition.name,
            newer.version > WorkflowDefinition.version,
        )
        .exists()
    )
    query = select(WorkflowDefinition).where(WorkflowDefinition.tenant_id == tenant_id, ~has_newer)
    return await created_page_rows(session, query, WorkflowDefinition, params)


async def page_versions(
    session: AsyncSession, *, tenant_id: str, name: str, params: PageParams
) -> Sequence[WorkflowDefinition]:
    """One page (plus one row) of the versions of ``name``, newest first."""
    query = select(WorkflowDefinition).where(
        WorkflowDefinition.tenant_id == tenant_id, WorkflowDefinition.name == name
    )
    return await created_page_rows(session, query, WorkflowDefinition, params)


async def created_at(
    session: AsyncSession, *, tenant_id: str, name: str, version: int
) -> datetime | None:
    """When one stored version was created."""
    return await session.scalar(
        select(WorkflowDefinition.created_at)
        .where(
            WorkflowDefinition.tenant_id == tenant_id,
            WorkflowDefinition.name == name,
            WorkflowDefinition.version == version,
        )
        .limit(1)
    )
