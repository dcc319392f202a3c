"""Deleting conversations after the inactivity period (``retention_inactive_days``).

:func:`purge_inactive` deletes one batch, oldest activity first, in a short
transaction. :func:`register_retention` makes it a platform maintenance job,
which the System Runtime runs on its maintenance schedule (a DBOS scheduled
workflow, once per tick across replicas): batch after batch until none is left.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.platform.runtime import Platform

__all__ = ["JOB_NAME", "purge_inactive", "register_retention"]

log = get_logger(__name__)

JOB_NAME = "ai-assistant.retention"


async def purge_inactive(
    platform: Platform, settings: AssistantSettings, *, batch: int, now: datetime | None = None
) -> int:
    """Delete up to ``batch`` conversations (with their messages) idle past the period."""
    cutoff = (now or utcnow()) - timedelta(days=settings.retention_inactive_days)
    async with unit_of_work(platform.sessionmaker) as session:
        repository = AssistantRepository(session)
        ids = await repository.inactive_since(cutoff=cutoff, limit=batch)
        if ids:
            await repository.delete_by_ids(ids)
    return len(ids)


def register_retention(platform: Platform, settings: AssistantSettings) -> None:
    """Register the retention job with the platform's maintenance jobs."""

    async def purge_all() -> None:
        # One cutoff for the whole run: conversations going idle meanwhile wait
        # for the next tick instead of keeping this one going.
        now, deleted = utcnow(), 0
        while True:
            count = await purge_inactive(
                platform, settings, batch=settings.retention_batch, now=now
            )
            deleted += count
            if count < settings.retention_batch:
                break
        log.info("assistant.retention_purged", conversations=deleted)

    platform.add_maintenance(JOB_NAME, purge_all)
