"""The runtime's metrics on /metrics: runs by status, step latency, retries, queue
depth and age, per-tenant concurrency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.helpers import metric_value, scrape
from tests.system_runtime.live_support import runtime_app
from tests.system_runtime.support import harness, op, runtime_settings
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.models import RunRecord

APPROVAL = [{"id": "approve", "kind": "approval", "approval_timeout_seconds": 3600}]


# As long as the harness waits for a run's status.
WAIT_SECONDS = 15.0


class TestMetrics:
    async def test_runs_steps_and_retries_are_counted_from_the_bus(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with harness(make_settings()) as h:
            h.probe.fail("flaky", 503)  # one retryable failure, then success
            await h.define(
                "two", [op("a", "test.sleep", ms=50), op("b", "test.flaky", tag="flaky")]
            )
            run_id = await h.started("two")
            assert (await h.wait_for(run_id))["status"] == "succeeded"
            text = scrape(h.platform)
        assert metric_value(text, "xynergy_runtime_run_transitions_total", status="running") >= 1
        assert metric_value(text, "xynergy_runtime_run_transitions_total", status="succeeded") == 1
        assert (
            metric_value(
                text,
                "xynergy_runtime_step_duration_seconds_count",
                operation="test.sleep",
                outcome="succeeded",
            )
            == 1
        )
        assert (
            metric_value(
                text,
                "xynergy_runtime_step_duration_seconds_sum",
                operation="test.sleep",
                outcome="succeeded",
            )
            >= 0.05
        )
        assert metric_value(text, "xynergy_runtime_step_retries_total", operation="test.flaky") == 1
        assert metric_value(text, "xynergy_runtime_step_retries_total", operation="test.sleep") == 0

    async def test_queue_depth_age_and_tenant_concurrency_are_read_from_the_table(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        runtime = runtime_settings(tenant_concurrency=2, metrics_refresh_seconds=3600)
        async with harness(make_settings(database_url=database_url), runtime=runtime) as h:
            await h.define("approval", APPROVAL)
            started = [await h.started("approval") for _ in range(3)]
            runs = await _settled(h, started)
            other_tenant, _, other = await h.key(tenant="globex")
            await h.define("approval", APPROVAL, tenant_id=other_tenant)
            other_run = (await h.start("approval", secret=other)).json()["id"]
            # Settled (waiting for their approval) before the rows are rewritten below.
            while (await h.detail(other_run, secret=other))["status"] != "waiting":
                await asyncio.sleep(0.02)
            # A picture the gauges must read back: acme runs 2 (its limit), one queued
            # for 60 s; globex runs 1.
            async with unit_of_work(h.platform.sessionmaker) as session:
                await session.execute(
                    update(RunRecord)
                    .where(RunRecord.id.in_(runs[:2] + [other_run]))
                    .values(status="running")
                )
                await session.execute(
                    update(RunRecord)
                    .where(RunRecord.id == runs[2])
                    .values(status="queued", created_at=utcnow() - timedelta(seconds=60))
                )
            await runtime_app(h).state.live._metrics.refresh()
            text = scrape(h.platform)
        assert metric_value(text, "xynergy_runtime_runs", status="running") == 3
        assert metric_value(text, "xynergy_runtime_runs", status="queued") == 1
        assert metric_value(text, "xynergy_runtime_runs", status="waiting") == 0
        assert 59 <= metric_value(text, "xynergy_runtime_oldest_queued_run_age_seconds") < 120
        assert metric_value(text, "xynergy_runtime_tenant_running_runs_max") == 2
        assert metric_value(text, "xynergy_runtime_tenants_running") == 2
        assert metric_value(text, "xynergy_runtime_tenants_at_concurrency_limit") == 1
        # No tenant id ever becomes a label.
        assert h.tenant_id not in text
        assert other_tenant not in text


async def _settled(h: Any, runs: list[str]) -> list[str]:
    """``runs`` once settled (at least two waiting, none between states), waiting first.

    Which runs take the tenant's two slots is DBOS's choice (SQLite stores enqueue
    times in whole seconds: no FIFO within one), and the first poll after a launch
    may still apply the queue's previous concurrency (a DBOS quirk), so a third may
    wait too. The test rewrites the statuses afterwards: it needs only that no run
    is about to change its row.
    """
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        statuses = {run_id: (await h.detail(run_id))["status"] for run_id in runs}
        waiting = [run_id for run_id in runs if statuses[run_id] == "waiting"]
        if len(waiting) >= 2 and set(statuses.values()) <= {"waiting", "queued"}:
            return waiting + [run_id for run_id in runs if run_id not in waiting]
        assert time.monotonic() < deadline, f"not settled: {statuses}"
        await asyncio.sleep(0.05)
