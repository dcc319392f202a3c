"""Runs recorded but never queued (the process died between the two) get queued."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger
from xynergy.system_runtime.engine import control
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.models import RunRecord

__all__ = ["queue_orphaned_runs"]

log = get_logger(__name__)

_BATCH = 500
# Younger queued runs may still be between their commit and their enqueue.
_SETTLE = timedelta(seconds=30)


async def queue_orphaned_runs(context: RuntimeContext) -> int:
    """Queue up to one batch of old ``queued`` runs whose workflow DBOS never saw."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        rows = (
            await session.execute(
                select(RunRecord.id, RunRecord.workflow_id, RunRecord.tenant_id)
                .where(RunRecord.status == "queued", RunRecord.created_at < utcnow() - _SETTLE)
                .order_by(RunRecord.created_at)
                .limit(_BATCH)
            )
        ).all()
    queued = 0
    for run_id, workflow_id, tenant_id in rows:
        if not await control.workflow_exists(workflow_id):
            await control.enqueue(run_id, workflow_id=workflow_id, tenant_id=tenant_id)
            queued += 1
    if queued:
        log.info("runtime.orphaned_runs_queued", count=queued)
    return queued
