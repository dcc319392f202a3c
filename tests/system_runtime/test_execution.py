"""Execution semantics of runs: parallel steps, per-tenant bounds, retries, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.system_runtime.support import harness, op, runtime_settings
from xynergy.platform.config import Settings

pytestmark = pytest.mark.asyncio


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


class TestParallelism:
    async def test_ten_independent_steps_run_five_at_a_time(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            steps = [op(f"s{i}", "test.sleep", ms=200) for i in range(10)]
            await h.define("fan-out", steps, max_parallel_steps=5)
            body = await h.wait_for(await h.started("fan-out"))
        assert body["status"] == "succeeded", body
        starts = sorted(_at(step["started_at"]) for step in body["steps"])
        ends = sorted(_at(step["finished_at"]) for step in body["steps"])
        second_wave = [start for start in starts if start >= ends[0]]
        assert len(second_wave) >= 5, (starts, ends)
        # Two waves of 200 ms, as the service measured them: about 0.4 s, far from
        # the 2 s of running them one by one.
        calls = [interval for tag in h.probe.intervals for interval in h.probe.intervals[tag]]
        span = max(end for _, end in calls) - min(start for start, _ in calls)
        # Generous: a loaded machine stretches the gap between the waves.
        assert 0.38 <= span < 1.6, span
        assert h.probe.max_in_flight == 5

    async def test_a_chain_never_overlaps(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            steps = [
                op("a", "test.sleep", ms=100),
                op("b", "test.sleep", ms=100, depends_on=["a"]),
                op("c", "test.sleep", ms=100, depends_on=["b"]),
                op("side", "test.sleep", ms=100),
            ]
            await h.define("chain", steps, max_parallel_steps=4)
            body = await h.wait_for(await h.started("chain"))
        assert body["status"] == "succeeded", body
        (a,), (b,), (c,) = (h.probe.intervals[tag] for tag in "abc")
        assert a[1] <= b[0], (a, b)
        assert b[1] <= c[0], (b, c)
        side = h.probe.intervals["side"][0]
        assert side[0] < c[0], "an independent step runs beside the chain"

    async def test_one_tenants_backlog_does_not_delay_another_tenant(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        runtime = runtime_settings(tenant_concurrency=2, worker_concurrency=32)
        async with harness(make_settings(database_url=database_url), runtime=runtime) as h:
            await h.define("slow", [op("only", "test.sleep", ms=100)])
            other_tenant, _, other_secret = await h.key(tenant="globex")
            await h.define("slow", [op("only", "test.sleep", ms=100)], tenant_id=other_tenant)
            # DBOS's queue worker reloads the queue's stored settings before it waits
            # for its next poll: the first poll after a launch can still use the
            # previous registration's (here the template database's tenant bound of
            # 4, not this test's 2). The bound holds from the second poll on.
            await asyncio.sleep(runtime.queue_poll_seconds * 2.5)
            backlog = [await h.started("slow") for _ in range(16)]
            response = await h.start("slow", secret=other_secret)
            assert response.status_code == 202, response.text
            other_run = response.json()["id"]
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                other = await h.detail(other_run, secret=other_secret)
                if other["status"] == "succeeded":
                    break
                assert asyncio.get_running_loop().time() < deadline, other
                await asyncio.sleep(0.02)
            still_waiting = [(await h.detail(run_id))["status"] for run_id in backlog].count(
                "queued"
            )
            for run_id in backlog:
                assert (await h.wait_for(run_id, timeout=30))["status"] == "succeeded"
        assert still_waiting >= 4, "the other tenant's run finished behind the backlog"
        assert h.probe.tenant_max_in_flight[h.tenant_id] == 2
        assert h.probe.tenant_max_in_flight[other_tenant] == 1


class TestRetries:
    async def test_retryable_failures_retry_and_permanent_ones_do_not(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            h.probe.fail("flaky", 503, 503)
            h.probe.fail_always("bad", 400)
            h.probe.fail("throttled", 429)
            h.probe.fail("throttled_bare", 429)
            h.probe.retry_after = "1"
            steps = [
                op("flaky", "test.flaky"),
                op("bad", "test.flaky"),
                op("throttled", "test.flaky"),
                op("slow", "test.sleep", ms=2000, timeout_seconds=0.4, max_attempts=2),
            ]
            await h.define("retries", steps, max_parallel_steps=4)
            body = await h.wait_for(await h.started("retries"))
        steps_by_id = {step["id"]: step for step in body["steps"]}
        assert body["status"] == "failed"
        assert steps_by_id["flaky"]["status"] == "succeeded"
        assert steps_by_id["flaky"]["attempts"] == 3
        assert h.probe.calls["flaky"] == 3
        assert steps_by_id["bad"]["status"] == "failed"
        assert steps_by_id["bad"]["attempts"] == 1
        assert steps_by_id["bad"]["error_code"] == "bad_request"
        assert h.probe.calls["bad"] == 1
        assert steps_by_id["throttled"]["status"] == "succeeded"
        assert steps_by_id["throttled"]["attempts"] == 2
        first, second = h.probe.call_times["throttled"]
        assert second - first >= 0.95, "Retry-After: 1 was honoured"
        assert steps_by_id["slow"]["status"] == "failed"
        assert steps_by_id["slow"]["error_code"] == "step_timeout"
        assert steps_by_id["slow"]["attempts"] == 2
        # The run's error is its first failed step in launch order.
        assert body["error_code"] == "bad_request"

    async def test_429_without_retry_after_is_permanent(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            h.probe.fail("throttled", 429, 429)
            await h.define("throttle", [op("throttled", "test.flaky")])
            body = await h.wait_for(await h.started("throttle"))
        assert body["status"] == "failed"
        assert body["steps"][0]["attempts"] == 1
        assert body["error_code"] == "rate_limited"
