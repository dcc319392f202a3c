"""Workflow schedules: CRUD and bounds, cron checks, firing through DBOS, the acting key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from dbos import DBOS, SetWorkflowID
from sqlalchemy import func, select

from tests.helpers import auth
from tests.system_runtime.support import Harness, harness, op
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.tenancy.models import ApiKey
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.models import RunRecord
from xynergy.system_runtime.schedules import firing
from xynergy.system_runtime.schedules.models import ScheduleRecord

pytestmark = pytest.mark.asyncio

SCHEDULES = "/system-runtime/api/workflow-schedules"
# Every second: the tests shorten the minimum interval to see fires within seconds.
EVERY_SECOND = "* * * * * *"
YEARLY = "0 0 1 1 *"


def _fast(**overrides: Any) -> RuntimeSettings:
    """Schedules may fire every second and are noticed within 0.2 s; queues poll fast."""
    values: dict[str, Any] = {
        "schedule_min_interval_seconds": 1,
        "schedule_poll_seconds": 0.2,
        "queue_poll_seconds": 0.05,
        "retry_base_seconds": 0.01,
    }
    values.update(overrides)
    return RuntimeSettings(**values)


async def _define_tick(h: Harness) -> None:
    await h.define("tick", [op("make", "test.create", tag="tick")])


async def _create(h: Harness, cron: str = YEARLY, *, secret: str | None = None, **body: Any) -> Any:
    payload = {"definition": "tick", "cron": cron, **body}
    return await h.client.post(SCHEDULES, json=payload, headers=auth(secret or h.secret))


async def _created(h: Harness, cron: str = YEARLY, **body: Any) -> dict[str, Any]:
    response = await _create(h, cron, **body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _runs_of(h: Harness, tenant_id: str | None = None) -> list[RunRecord]:
    async with unit_of_work(h.platform.sessionmaker) as session:
        rows = await session.scalars(
            select(RunRecord)
            .where(RunRecord.tenant_id == (tenant_id or h.tenant_id))
            .order_by(RunRecord.created_at)
            .limit(1000)
        )
        return list(rows.all())


async def _row(h: Harness, schedule_id: str) -> ScheduleRecord:
    async with unit_of_work(h.platform.sessionmaker) as session:
        row = await session.get(ScheduleRecord, schedule_id)
    assert row is not None
    return row


async def _dbos_schedule(schedule_id: str) -> dict[str, Any]:
    """DBOS's row of the schedule (empty when DBOS has none)."""
    stored = await DBOS.get_schedule_async(firing.dbos_schedule_name(schedule_id))
    return dict(stored) if stored is not None else {}


async def _fire_now(schedule_id: str) -> None:
    """One tick, enqueued by DBOS as its scheduler would, awaited to its end."""
    name = firing.dbos_schedule_name(schedule_id)
    handle = await asyncio.to_thread(DBOS.trigger_schedule, name)
    await asyncio.to_thread(handle.get_result)


async def _wait(predicate: Callable[[], Any], *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


class TestCrud:
    async def test_create_read_list_pause_resume_delete(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            created = await _created(h, "0 9 * * 1-5", timezone="Europe/Paris")
            assert created["status"] == "active"
            assert created["timezone"] == "Europe/Paris"
            schedule_id = created["id"]
            dbos_name = firing.dbos_schedule_name(schedule_id)
            stored = await DBOS.get_schedule_async(dbos_name)
            assert stored is not None
            assert stored["schedule"] == "0 9 * * 1-5"
            assert stored["cron_timezone"] == "Europe/Paris"

            one = await h.client.get(f"{SCHEDULES}/{schedule_id}", headers=h.headers)
            assert one.status_code == 200
            assert one.json()["definition_name"] == "tick"

            paused = await h.client.patch(
                f"{SCHEDULES}/{schedule_id}", json={"status": "paused"}, headers=h.headers
            )
            assert paused.status_code == 200, paused.text
            assert paused.json()["status"] == "paused"
            assert (await _dbos_schedule(schedule_id)).get("status") == "PAUSED"

            changed = await h.client.patch(
                f"{SCHEDULES}/{schedule_id}",
                json={"status": "active", "cron": "30 8 * * *"},
                headers=h.headers,
            )
            assert changed.status_code == 200, changed.text
            dbos_side = await _dbos_schedule(schedule_id)
            assert (dbos_side.get("status"), dbos_side.get("schedule")) == ("ACTIVE", "30 8 * * *")

            deleted = await h.client.delete(f"{SCHEDULES}/{schedule_id}", headers=h.headers)
            assert deleted.status_code == 204
            assert await DBOS.get_schedule_async(dbos_name) is None
            gone = await h.client.get(f"{SCHEDULES}/{schedule_id}", headers=h.headers)
            assert gone.status_code == 404

    async def test_list_is_cursor_paginated(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            ids = {(await _created(h))["id"] for _ in range(3)}
            first = (await h.client.get(f"{SCHEDULES}?limit=2", headers=h.headers)).json()
            assert len(first["items"]) == 2
            assert first["next_cursor"]
            cursor = first["next_cursor"]
            second = (
                await h.client.get(f"{SCHEDULES}?limit=2&cursor={cursor}", headers=h.headers)
            ).json()
            assert second["next_cursor"] is None
            assert {item["id"] for item in first["items"] + second["items"]} == ids

    async def test_count_per_tenant_is_bounded(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        runtime = _fast(schedules_max_per_tenant=2)
        async with harness(make_settings(database_url=database_url), runtime=runtime) as h:
            await _define_tick(h)
            await _created(h)
            await _created(h)
            third = await _create(h)
            assert third.status_code == 409, third.text
            assert set(third.json()) == {"error", "detail", "request_id"}
            # Another tenant has its own allowance.
            other_tenant, _, other = await h.key("globex")
            await h.define("tick", [op("make", "test.create")], tenant_id=other_tenant)
            assert (await _create(h, secret=other)).status_code == 201

    async def test_count_of_all_tenants_is_bounded(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        runtime = _fast(schedules_max_total=2)
        async with harness(make_settings(), runtime=runtime) as h:
            await _define_tick(h)
            await _created(h)
            other_tenant, _, other = await h.key("globex")
            await h.define("tick", [op("make", "test.create")], tenant_id=other_tenant)
            assert (await _create(h, secret=other)).status_code == 201
            refused = await _create(h, secret=other)
            assert refused.status_code == 409, refused.text

    async def test_another_tenants_schedule_is_not_found(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            _, _, other = await h.key("globex")
            url = f"{SCHEDULES}/{schedule_id}"
            assert (await h.client.get(url, headers=auth(other))).status_code == 404
            patched = await h.client.patch(url, json={"status": "paused"}, headers=auth(other))
            assert patched.status_code == 404
            assert (await h.client.delete(url, headers=auth(other))).status_code == 404
            listed = (await h.client.get(SCHEDULES, headers=auth(other))).json()
            assert listed["items"] == []
            assert (await _row(h, schedule_id)).status == "active"

    async def test_scopes(self, make_settings: Callable[..., Settings], database_url: str) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            _, _, reader = await h.key(scopes=("workflows:read", "content:write"))
            assert (await _create(h, secret=reader)).status_code == 403
            assert (await h.client.get(SCHEDULES, headers=auth(reader))).status_code == 200
            # workflows:write, but not the scope the definition's step needs.
            _, _, writer = await h.key(scopes=("workflows:write", "workflows:read"))
            refused = await _create(h, secret=writer)
            assert refused.status_code == 403, refused.text
            assert "content:write" in refused.json()["detail"]
            async with unit_of_work(h.platform.sessionmaker) as session:
                count = await session.scalar(select(func.count()).select_from(ScheduleRecord))
            assert count == 0

    async def test_definition_and_input_are_checked(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await h.define(
                "needs-input",
                [op("make", "test.create", tag="x")],
                inputs={"topic": {"type": "string"}},
            )
            missing = await h.client.post(
                SCHEDULES, json={"definition": "nope", "cron": YEARLY}, headers=h.headers
            )
            assert missing.status_code == 404
            bad_input = await h.client.post(
                SCHEDULES,
                json={"definition": "needs-input", "cron": YEARLY, "input": {"topic": 3}},
                headers=h.headers,
            )
            assert bad_input.status_code == 422, bad_input.text


class TestCron:
    @pytest.mark.parametrize(
        ("cron", "timezone", "fragment"),
        [
            ("not a cron", "UTC", "cron"),
            ("* * * * * * *", "UTC", "cron"),  # seven fields (a year) are refused
            ("61 * * * *", "UTC", "cron"),
            ("*/1 * * * *", "UTC", "fires every 60 s"),
            ("0,1 * * * *", "UTC", "fires every 60 s"),  # uneven, but once a minute at times
            ("0 0 30 2 *", "UTC", "never fires"),
            ("0 * * * *", "Mars/Olympus", "timezone"),
            ("0 * * * *", "../../etc/passwd", "timezone"),
        ],
    )
    async def test_refused(
        self,
        make_settings: Callable[..., Settings],
        cron: str,
        timezone: str,
        fragment: str,
    ) -> None:
        async with harness(make_settings()) as h:
            await _define_tick(h)
            response = await _create(h, cron, timezone=timezone)
            assert response.status_code == 422, response.text
            assert fragment in response.json()["detail"]
            changed = await h.client.get(SCHEDULES, headers=h.headers)
            assert changed.json()["items"] == []

    async def test_the_minimum_interval_is_a_setting(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:  # the default: every 5 minutes at most
            await _define_tick(h)
            assert (await _create(h, "*/5 * * * *")).status_code == 201
            assert (await _create(h, "*/4 * * * *")).status_code == 422
            assert (await _create(h, "@hourly")).status_code == 201

    async def test_patch_checks_the_cron_too(self, make_settings: Callable[..., Settings]) -> None:
        async with harness(make_settings()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            response = await h.client.patch(
                f"{SCHEDULES}/{schedule_id}", json={"cron": "* * * * *"}, headers=h.headers
            )
            assert response.status_code == 422
            assert (await _row(h, schedule_id)).cron == YEARLY
            assert (await _dbos_schedule(schedule_id)).get("schedule") == YEARLY


class TestFiring:
    async def test_the_scheduler_fires_within_seconds_and_each_fire_starts_a_run(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h, EVERY_SECOND))["id"]

            async def two_runs_done() -> bool:
                runs = await _runs_of(h)
                return sum(run.status == "succeeded" for run in runs) >= 2

            await _wait(two_runs_done)
            view = (await h.client.get(f"{SCHEDULES}/{schedule_id}", headers=h.headers)).json()
            assert view["fires"] >= 2
            assert view["last_run_id"]
            assert view["last_error"] is None
            runs = await _runs_of(h)
            assert all(run.key_id == h.key_id for run in runs)
            assert all((run.idempotency_key or "").startswith("xynergy-schedule-") for run in runs)

            await h.client.delete(f"{SCHEDULES}/{schedule_id}", headers=h.headers)
            await asyncio.sleep(0.5)  # a tick already enqueued may still land
            settled = len(await _runs_of(h))
            await asyncio.sleep(2.5)
            assert len(await _runs_of(h)) == settled, "a deleted schedule kept firing"

            async def all_ended() -> bool:
                return all(run.status == "succeeded" for run in await _runs_of(h))

            await _wait(all_ended)
            # One write per run at the test service: no tick acted twice.
            assert h.probe.side_effects["tick"] == settled

    async def test_one_tick_starts_one_run_however_often_it_executes(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            tick = datetime(2026, 1, 1, tzinfo=UTC)
            # Two executions of one tick under different workflow ids (what a fire
            # re-executed after a crash, or a duplicate enqueue, would be).
            for workflow_id in (new_id(), new_id()):
                with SetWorkflowID(workflow_id):
                    started = await DBOS.start_workflow_async(
                        firing.fire_schedule, tick, schedule_id
                    )
                await started.get_result()
            runs = await _runs_of(h)
            assert len(runs) == 1
            assert runs[0].idempotency_key == firing.tick_idempotency_key(schedule_id, tick)

            # DBOS's own per-tick workflow ids: two replicas' schedulers (here a
            # backfill over the same window, twice) enqueue each tick once.
            name = firing.dbos_schedule_name(schedule_id)
            start, end = datetime(2020, 6, 1, tzinfo=UTC), datetime(2023, 6, 1, tzinfo=UTC)
            first = await asyncio.to_thread(DBOS.backfill_schedule, name, start, end)
            second = await asyncio.to_thread(DBOS.backfill_schedule, name, start, end)
            ticks = [handle.get_workflow_id() for handle in first]
            assert ticks == [handle.get_workflow_id() for handle in second]
            assert len(ticks) == 3
            for handle in first:
                await asyncio.to_thread(handle.get_result)
            assert len(await _runs_of(h)) == 1 + 3  # 2021, 2022 and 2023

    async def test_a_paused_schedule_does_not_start_runs(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings(), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            await h.client.patch(
                f"{SCHEDULES}/{schedule_id}", json={"status": "paused"}, headers=h.headers
            )
            await _fire_now(schedule_id)  # a tick enqueued before the pause was seen
            assert await _runs_of(h) == []
            await h.client.patch(
                f"{SCHEDULES}/{schedule_id}", json={"status": "active"}, headers=h.headers
            )
            await _fire_now(schedule_id)
            assert len(await _runs_of(h)) == 1

    async def test_a_revoked_key_stops_its_schedule_and_says_why(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            await _fire_now(schedule_id)
            assert len(await _runs_of(h)) == 1
            async with unit_of_work(h.platform.sessionmaker) as session:
                key = await session.get(ApiKey, h.key_id)
                assert key is not None
                key.revoked_at = utcnow()

            await _fire_now(schedule_id)
            assert len(await _runs_of(h)) == 1, "a revoked key's schedule started a run"
            row = await _row(h, schedule_id)
            assert row.status == "stopped"
            assert row.stopped_reason
            assert "revoked" in row.stopped_reason
            assert (await _dbos_schedule(schedule_id)).get("status") == "PAUSED"
            # Resuming cannot bring the dead key back (another key of the tenant asks).
            _, _, other = await h.key()
            resumed = await h.client.patch(
                f"{SCHEDULES}/{schedule_id}", json={"status": "active"}, headers=auth(other)
            )
            assert resumed.status_code == 409
            view = await h.client.get(f"{SCHEDULES}/{schedule_id}", headers=auth(other))
            assert view.json()["status"] == "stopped"

    async def test_a_failed_start_is_recorded_on_the_schedule(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings(), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            async with unit_of_work(h.platform.sessionmaker) as session:
                row = await session.get(ScheduleRecord, schedule_id)
                assert row is not None
                row.definition_name = "gone"  # as if the definition were deleted
            await _fire_now(schedule_id)
            row = await _row(h, schedule_id)
            assert row.fires == 1
            assert row.last_run_id is None
            assert row.last_error
            assert row.last_error.startswith("not_found")
            assert row.status == "active"

    async def test_a_dbos_schedule_without_its_row_removes_itself(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings(), runtime=_fast()) as h:
            await _define_tick(h)
            schedule_id = (await _created(h))["id"]
            async with unit_of_work(h.platform.sessionmaker) as session:
                row = await session.get(ScheduleRecord, schedule_id)
                await session.delete(row)
            await _fire_now(schedule_id)
            assert await DBOS.get_schedule_async(firing.dbos_schedule_name(schedule_id)) is None
            assert await _runs_of(h) == []
