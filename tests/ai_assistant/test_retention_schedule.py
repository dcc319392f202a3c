"""Retention as a runtime workflow: the maintenance schedule deletes idle conversations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from dbos import DBOS
from sqlalchemy import update

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.models import Conversation
from xynergy.ai_assistant.retention import JOB_NAME
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.schedules import firing


async def _idle_for(api: AssistantApi, conversation_id: str, days: int) -> None:
    async with unit_of_work(api.platform.sessionmaker) as session:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(last_activity_at=utcnow() - timedelta(days=days))
        )


async def _tick() -> None:
    handle = await asyncio.to_thread(DBOS.trigger_schedule, firing.MAINTENANCE_SCHEDULE)
    await asyncio.to_thread(handle.get_result)


class TestRetentionSchedule:
    async def test_the_maintenance_schedule_runs_hourly(self, api: AssistantApi) -> None:
        stored = await DBOS.get_schedule_async(firing.MAINTENANCE_SCHEDULE)
        assert stored is not None
        assert stored["schedule"] == "0 0 */1 * * *"
        assert stored["workflow_name"] == firing.MAINTENANCE_WORKFLOW
        assert JOB_NAME in api.platform.maintenance_jobs

    async def test_a_tick_deletes_idle_conversations_and_keeps_active_ones(
        self, api: AssistantApi
    ) -> None:
        days = AssistantSettings().retention_inactive_days
        active = (await api.send("still here")).json()["conversation_id"]
        idle = (await api.send("long ago")).json()["conversation_id"]
        await _idle_for(api, idle, days + 1)
        await _idle_for(api, active, days - 1)
        await _tick()
        gone = await api.client.get(f"{CONVERSATIONS}/{idle}", headers=api.headers)
        assert gone.status_code == 404
        kept = await api.client.get(f"{CONVERSATIONS}/{active}", headers=api.headers)
        assert kept.status_code == 200
        assert await api.counts() == (1, 2)

    async def test_a_failing_job_does_not_stop_the_others(self, api: AssistantApi) -> None:
        ran: list[str] = []

        async def broken() -> None:
            ran.append("broken")
            raise RuntimeError("boom")

        async def after() -> None:
            ran.append("after")

        # Sorted by name: the broken job runs first.
        api.platform.add_maintenance("a-broken", broken)
        api.platform.add_maintenance("z-after", after)
        await _tick()
        assert ran == ["broken", "after"]
