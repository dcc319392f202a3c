"""Approval and wait steps: signals, rejections, timeouts, restarts, and resumes around them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import pytest
from dbos import DBOS

from tests.system_runtime.support import Probe, harness, op
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.engine import control
from xynergy.system_runtime.models import RunRecord

pytestmark = pytest.mark.asyncio

GATE = {"id": "gate", "kind": "approval", "depends_on": ["first"]}


def _gated(**gate: object) -> list[dict[str, object]]:
    return [
        op("first", "test.sleep"),
        {**GATE, **gate},
        op("last", "test.sleep", depends_on=["gate"]),
    ]


def _step(body: dict[str, object], step_id: str) -> dict[str, object]:
    return next(step for step in body["steps"] if step["id"] == step_id)  # type: ignore[attr-defined]


class TestApproval:
    async def test_approve_continues_and_reject_ends_with_the_reason(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _gated())
            approved_run = await h.started("gated")
            rejected_run = await h.started("gated")
            waiting = await h.wait_for(approved_run, ("waiting",))
            early = await h.post(approved_run, "signal", {"step_id": "last", "decision": "approve"})
            approve = await h.post(
                approved_run, "signal", {"step_id": "gate", "decision": "approve", "reason": "ok"}
            )
            approved = await h.wait_for(approved_run)
            twice = await h.post(approved_run, "signal", {"step_id": "gate", "decision": "approve"})
            await h.wait_for_step(rejected_run, "gate", "waiting")
            reject = await h.post(
                rejected_run,
                "signal",
                {"step_id": "gate", "decision": "reject", "reason": "budget is spent"},
            )
            rejected = await h.wait_for(rejected_run)
            unknown = await h.post(
                rejected_run, "signal", {"step_id": "nope", "decision": "approve"}
            )
        assert waiting["status"] == "waiting"
        assert early.status_code == 409, early.text
        assert approve.status_code == 200, approve.text
        assert approved["status"] == "succeeded", approved
        assert twice.status_code == 409, twice.text
        assert reject.status_code == 200, reject.text
        assert rejected["status"] == "failed"
        assert rejected["error_code"] == "approval_rejected"
        assert "budget is spent" in rejected["error"]
        assert _step(rejected, "gate")["status"] == "failed"
        assert _step(rejected, "last")["status"] == "pending"
        assert unknown.status_code == 404
        assert h.probe.calls["last"] == 1, "only the approved run went on"

    async def test_an_unsignalled_approval_times_out(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _gated(approval_timeout_seconds=1))
            body = await h.wait_for(await h.started("gated"))
        assert body["status"] == "failed", body
        assert body["error_code"] == "approval_timed_out"
        assert h.probe.calls["last"] == 0

    async def test_a_rejected_run_resumes_at_its_approval(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _gated())
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "reject"})
            await h.wait_for(run_id)
            resumed = await h.post(run_id, "resume")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            body = await h.wait_for(run_id)
        assert resumed.status_code == 202, resumed.text
        assert body["status"] == "succeeded", body
        assert h.probe.calls["first"] == 1
        assert h.probe.calls["last"] == 1

    async def test_an_approval_beside_a_failing_step_resumes(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """An approval launched beside an operation, then a later step fails: the
        resumed run must draw the same DBOS step ids for the approval (recorded,
        not waited again) and the operation, or DBOS refuses the replay."""
        async with harness(make_settings(database_url=database_url)) as h:
            h.probe.fail_always("after", 400)
            await h.define(
                "side-by-side",
                [
                    {"id": "gate", "kind": "approval"},
                    op("beside", "test.sleep"),
                    op("after", "test.flaky", depends_on=["gate", "beside"]),
                ],
            )
            run_id = await h.started("side-by-side")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            failed = await h.wait_for(run_id)
            h.probe.heal("after")
            resumed = await h.post(run_id, "resume")
            body = await h.wait_for(run_id, timeout=8)
        assert failed["status"] == "failed", failed
        assert resumed.status_code == 202, resumed.text
        assert body["status"] == "succeeded", body
        assert h.probe.calls["beside"] == 1
        assert h.probe.calls["after"] == 2

    async def test_a_rejected_approval_beside_a_failed_step_waits_again_on_resume(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """The approval's rejection must not be replayed by the resume: its DBOS ids
        come before the failed operation's, and the fork must start at them."""
        async with harness(make_settings(database_url=database_url)) as h:
            h.probe.fail_always("beside", 400)
            await h.define(
                "side-by-side",
                [
                    {"id": "gate", "kind": "approval"},
                    op("beside", "test.flaky", ms=0),
                    op("after", "test.sleep", depends_on=["gate", "beside"]),
                ],
            )
            run_id = await h.started("side-by-side")
            await h.wait_for_step(run_id, "beside", "failed")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "reject"})
            failed = await h.wait_for(run_id)
            h.probe.heal("beside")
            resumed = await h.post(run_id, "resume")
            waiting = await h.wait_for(run_id, ("waiting",), timeout=5)
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            body = await h.wait_for(run_id)
        assert failed["status"] == "failed", failed
        assert resumed.status_code == 202, resumed.text
        assert waiting["status"] == "waiting"
        assert body["status"] == "succeeded", body
        assert h.probe.calls["after"] == 1

    async def test_a_superseded_wait_never_rewrites_the_resumed_run(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """Cancel a waiting run and resume it: the cancelled workflow's approval still
        times out later, and must not mark the resumed (and finished) run failed."""
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _gated(approval_timeout_seconds=1))
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "cancel")
            await h.post(run_id, "resume")
            await h.wait_for_step(run_id, "gate", "waiting")
            await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            done = await h.wait_for(run_id)
            await asyncio.sleep(1.3)
            later = await h.detail(run_id)
        assert done["status"] == "succeeded", done
        assert later["status"] == "succeeded", later
        assert _step(later, "gate")["status"] == "succeeded", later


class TestSupersededWorkflow:
    async def test_a_workflow_that_is_no_longer_the_runs_writes_nothing(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """A resume points the run at a new DBOS workflow; the old one, still waiting
        (DBOS does not interrupt a receive), must not write the run's rows if it wakes."""
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define("gated", _gated())
            run_id = await h.started("gated")
            await h.wait_for(run_id, ("waiting",))
            async with unit_of_work(h.platform.sessionmaker) as session:
                run = await session.get(RunRecord, run_id)
                assert run is not None
                old_workflow = run.workflow_id
                run.workflow_id = f"{run_id}-resume-9"
            await control.signal(old_workflow, "gate", {"decision": "approve"})
            for _ in range(300):
                status = await DBOS.get_workflow_status_async(old_workflow)
                if status is not None and status.status != "PENDING":
                    break
                await asyncio.sleep(0.02)
            body = await h.detail(run_id)
        assert status is not None
        assert status.status != "PENDING", "the old workflow woke and ended"
        assert h.probe.calls["last"] == 0, "the old workflow called nothing"
        assert body["status"] == "waiting", body
        assert _step(body, "gate")["status"] == "waiting", body
        assert _step(body, "last")["status"] == "pending", body
        assert _step(body, "last")["attempts"] == 0, body


class TestAcrossRestart:
    async def test_a_waiting_approval_survives_a_restart(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        async with harness(settings) as h:
            await h.define("gated", _gated())
            run_id = await h.started("gated")
            await h.wait_for_step(run_id, "gate", "waiting")
            secret = h.secret
        probe = Probe()
        async with harness(settings, probe=probe) as h:
            h.secret = secret
            # Recovered: the run replays to its approval and waits again.
            still = await h.wait_for(run_id, ("waiting",), timeout=5)
            signal = await h.post(run_id, "signal", {"step_id": "gate", "decision": "approve"})
            body = await h.wait_for(run_id)
        assert still["status"] == "waiting", still
        assert signal.status_code == 200, signal.text
        assert body["status"] == "succeeded", body
        assert probe.calls["first"] == 0, "the step before the approval did not run again"
        assert probe.calls["last"] == 1


class TestWait:
    async def test_a_wait_step_waits(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            await h.define(
                "pause",
                [
                    op("first", "test.sleep"),
                    {"id": "pause", "kind": "wait", "wait_seconds": 0.5, "depends_on": ["first"]},
                    op("last", "test.sleep", depends_on=["pause"]),
                ],
            )
            body = await h.wait_for(await h.started("pause"))
        assert body["status"] == "succeeded", body
        pause = _step(body, "pause")
        waited = datetime.fromisoformat(str(pause["finished_at"])) - datetime.fromisoformat(
            str(pause["started_at"])
        )
        assert waited.total_seconds() >= 0.5
        (first,), (last,) = h.probe.intervals["first"], h.probe.intervals["last"]
        assert last[0] - first[1] >= 0.5
