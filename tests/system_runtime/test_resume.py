"""Resume at the failed step, cancel between steps, and side effects exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.helpers import metric_value, scrape
from tests.system_runtime.support import TEST_SERVICE, harness, op
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.config import Settings
from xynergy.system_runtime.engine.calls import idempotency_key_for

pytestmark = pytest.mark.asyncio


def _ai_upstream_calls(h_platform: object) -> float:
    text = scrape(h_platform)  # type: ignore[arg-type]
    return metric_value(text, "xynergy_ai_upstream_calls_total", provider="offline", outcome="ok")


def _tasks_named(prefix: str) -> list[str]:
    return [task.get_name() for task in asyncio.all_tasks() if task.get_name().startswith(prefix)]


def _steps(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in body["steps"]}


class TestResume:
    async def test_resume_runs_the_failed_step_and_the_rest_only(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            h.probe.fail_always("s4", 400)
            ai_step = {
                "id": "s2",
                "operation": "ai.generate",
                "input": {"prompt": "three names for a vegan bakery", "task": "content"},
                "depends_on": ["s1"],
            }
            await h.define(
                "five",
                [
                    op("s1", "test.create"),
                    ai_step,
                    op("s3", "test.sleep", depends_on=["s2"]),
                    op("s4", "test.flaky", depends_on=["s3"]),
                    op("s5", "test.sleep", depends_on=["s4"]),
                ],
            )
            run_id = await h.started("five")
            failed = await h.wait_for(run_id)
            ai_calls = _ai_upstream_calls(h.platform)
            h.probe.heal("s4")
            resumed = await h.post(run_id, "resume")
            assert resumed.status_code == 202, resumed.text
            done = await h.wait_for(run_id)
            again = await h.post(run_id, "resume")
            ai_calls_after = _ai_upstream_calls(h.platform)
        assert failed["status"] == "failed", failed
        assert failed["error_code"] == "bad_request"
        assert [step["status"] for step in failed["steps"]] == [
            "succeeded",
            "succeeded",
            "succeeded",
            "failed",
            "pending",
        ]
        assert ai_calls == 1
        assert done["status"] == "succeeded", done
        assert done["resumes"] == 1
        assert done["error_code"] is None
        assert {step["status"] for step in done["steps"]} == {"succeeded"}
        # Steps 1-3 were not executed again: counted at the fakes and at the AI upstream.
        assert h.probe.invocations_by_key[idempotency_key_for(run_id, "s1")] == 1
        assert h.probe.side_effects["s1"] == 1
        assert h.probe.calls["s3"] == 1
        assert ai_calls_after == ai_calls
        assert h.probe.calls["s4"] == 2
        assert h.probe.calls["s5"] == 1
        assert _steps(done)["s1"]["attempts"] == 1
        assert again.status_code == 409, again.text

    async def test_a_cancelled_run_resumes(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define(
                "gated",
                [
                    op("first", "test.sleep"),
                    {"id": "gate", "kind": "approval", "depends_on": ["first"]},
                    op("last", "test.sleep", depends_on=["gate"]),
                ],
            )
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            cancelled = await h.post(run_id, "cancel")
            await asyncio.sleep(0.3)
            still = await h.detail(run_id)
            resumed = await h.post(run_id, "resume")
            await h.wait_for_step(run_id, "gate", "waiting")
            signal = await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            done = await h.wait_for(run_id)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert still["status"] == "cancelled", still
        assert resumed.status_code == 202, resumed.text
        assert signal.status_code == 200, signal.text
        assert done["status"] == "succeeded", done
        assert h.probe.calls["first"] == 1
        assert h.probe.calls["last"] == 1


class TestCancel:
    async def test_cancel_stops_the_run_between_steps(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define(
                "three",
                [
                    op("a", "test.sleep", ms=300),
                    op("b", "test.sleep", depends_on=["a"]),
                    op("c", "test.sleep", depends_on=["b"]),
                ],
            )
            run_id = await h.started("three")
            while h.probe.calls["a"] == 0:
                await asyncio.sleep(0.01)
            cancelled = await h.post(run_id, "cancel")
            await asyncio.sleep(0.6)
            body = await h.detail(run_id)
            again = await h.post(run_id, "cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert body["status"] == "cancelled", body
        assert body["error_code"] == "cancelled"
        assert h.probe.calls["a"] == 1
        assert h.probe.calls["b"] == 0
        assert h.probe.calls["c"] == 0
        assert again.status_code == 409

    async def test_cancel_ends_a_waiting_approval_at_once(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """DBOS's cancel only marks the workflow; the approval's task (and DBOS's polling
        for its signal) must not live on until its timeout, a week away."""
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define(
                "gated",
                [{"id": "gate", "kind": "approval"}, op("last", "test.sleep", depends_on=["gate"])],
            )
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            for _ in range(200):
                if _tasks_named(f"run-{run_id}-gate"):
                    break
                await asyncio.sleep(0.01)
            assert _tasks_named(f"run-{run_id}-gate"), "the approval waits in a task"
            cancelled = await h.post(run_id, "cancel")
            for _ in range(100):
                if not _tasks_named(f"run-{run_id}-"):
                    break
                await asyncio.sleep(0.02)
            left = _tasks_named(f"run-{run_id}-")
            body = await h.detail(run_id)
        assert cancelled.status_code == 200, cancelled.text
        assert left == [], left
        assert body["status"] == "cancelled", body
        assert h.probe.calls["last"] == 0

    async def test_a_queued_run_is_cancelled_before_it_starts(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("one", [op("only", "test.sleep")])
            run_id = await h.started("one")
            cancelled = await h.post(run_id, "cancel")
            await asyncio.sleep(0.5)
            body = await h.detail(run_id)
        assert cancelled.status_code == 200, cancelled.text
        assert body["status"] == "cancelled", body
        assert h.probe.calls["only"] == 0


class TestSideEffectsOnce:
    async def test_a_retried_write_creates_one_record(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """The first attempt writes, then outlives its timeout; the retry carries the same
        Idempotency-Key, and the receiving service creates nothing new."""
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define(
                "write",
                [op("create", "test.create", ms=2000, timeout_seconds=0.5, max_attempts=4)],
            )
            run_id = await h.started("write")
            body = await h.wait_for(run_id)
            key = idempotency_key_for(run_id, "create")
            delivered = h.probe.invocations_by_key[key]
            # The same call once more, as a step re-executed after a crash would make it:
            # the platform's Idempotency-Key layer answers it from its record.
            replay = await h.platform.services.request(
                TEST_SERVICE,
                "POST",
                "/api/create",
                caller=AuthContext(
                    tenant_id=h.tenant_id,
                    key_id=h.key_id,
                    key_tenant_id=h.tenant_id,
                    scopes=frozenset({"content:write"}),
                ),
                scopes=["content:write"],
                json={"tag": "create", "ms": 2000},
                idempotency_key=key,
            )
        assert body["status"] == "succeeded", body
        assert body["steps"][0]["attempts"] >= 2
        assert list(h.probe.records_by_key) == [key]
        assert h.probe.side_effects["create"] == 1
        # The timed-out first attempt was never answered, so the platform had nothing to
        # replay: the retry reached the service, whose own check kept it to one record.
        assert delivered >= 2
        assert replay.status == 200
        assert replay.headers.get("idempotent-replayed") == "true"
        assert replay.json()["id"] == h.probe.records_by_key[key]
        assert h.probe.invocations_by_key[key] == delivered
