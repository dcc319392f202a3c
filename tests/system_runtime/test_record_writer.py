"""The engine's group commit of run and step rows (engine/record_writer.py).

Steps queue their row updates and go on; one task commits what is queued in one
transaction. What must hold: updates queued together share one commit, a row
ends in its latest state whatever order the kinds were queued in within a batch,
the workflow guard still refuses a superseded workflow's updates, and a failed
commit reaches whoever awaits it instead of vanishing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from tests.system_runtime.support import Harness, harness
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.system_runtime.engine import record_writer
from xynergy.system_runtime.engine.record_writer import RecordWriter
from xynergy.system_runtime.models import RunRecord, StepRecord

pytestmark = pytest.mark.asyncio

STEPS = 20


async def _run_rows(h: Harness, steps: int = STEPS) -> str:
    """A run of ``steps`` pending steps, straight into the tables."""
    run_id = new_id()
    async with unit_of_work(h.platform.sessionmaker) as session:
        session.add(
            RunRecord(
                id=run_id,
                tenant_id=h.tenant_id,
                definition_name="rows",
                definition_version=1,
                built_in=False,
                spec={"name": "rows", "steps": []},
                input={},
                status="queued",
                workflow_id=run_id,
                resumes=0,
                key_id=h.key_id,
                key_tenant_id=h.tenant_id,
                scopes=[],
                created_at=utcnow(),
            )
        )
        for position in range(steps):
            session.add(
                StepRecord(
                    run_id=run_id,
                    step_id=f"s{position}",
                    position=position,
                    kind="operation",
                    status="pending",
                    attempts=0,
                )
            )
    return run_id


async def _rows(h: Harness, run_id: str) -> tuple[RunRecord, dict[str, StepRecord]]:
    async with unit_of_work(h.platform.sessionmaker) as session:
        run = await session.get(RunRecord, run_id)
        steps = await session.scalars(select(StepRecord).where(StepRecord.run_id == run_id))
        assert run is not None
        return run, {step.step_id: step for step in steps}


@asynccontextmanager
async def _counted(h: Harness) -> AsyncIterator[dict[str, int]]:
    """Commits of transactions that updated the runtime's rows, and those UPDATEs,
    while the block runs (the app's own background work commits beside them)."""
    counts = {"commits": 0, "updates": 0}
    engine = h.platform.engine.sync_engine
    writing: set[int] = set()

    def on_execute(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE RUNTIME_RUN"):
            counts["updates"] += 1
            writing.add(id(connection))

    def on_commit(connection: Any) -> None:
        if id(connection) in writing:
            writing.discard(id(connection))
            counts["commits"] += 1

    event.listen(engine, "after_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "after_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


class TestGroupCommit:
    async def test_updates_queued_together_share_one_commit(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h)
            other = await _run_rows(h, steps=1)
            writer = RecordWriter(h.platform.engine)
            try:
                async with _counted(h) as counts:
                    writer.run_started(run_id, run_id)
                    writer.run_started(other, other)  # kinds hold many runs' rows
                    for position in range(STEPS):
                        writer.attempt_started(run_id, run_id, f"s{position}", position)
                    for position in range(STEPS):
                        writer.step_succeeded(run_id, run_id, f"s{position}", {"n": position})
                    await writer.run_ended(run_id, run_id, "succeeded")
            finally:
                await writer.stop()
            run, steps = await _rows(h, run_id)
            other_run, _ = await _rows(h, other)
        # 43 updates, one transaction, one executemany per kind: one by one they
        # were 43 commits.
        assert counts["commits"] == 1, counts
        assert counts["updates"] <= 4, counts
        assert run.status == "succeeded", run.status
        assert other_run.status == "running", other_run.status
        assert run.started_at is not None
        assert run.finished_at is not None
        assert {step.status for step in steps.values()} == {"succeeded"}
        assert [steps[f"s{n}"].output for n in range(STEPS)] == [{"n": n} for n in range(STEPS)]
        assert {step.attempts for step in steps.values()} == {1}
        assert steps["s7"].dbos_step_id == 7

    async def test_a_batch_ends_every_row_in_its_latest_state(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """Kinds commit in a step's order of life, whatever order they were queued in."""
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=3)
            writer = RecordWriter(h.platform.engine)
            try:
                # Queued out of order in one batch: the end before the start.
                writer.step_failed(run_id, run_id, "s0", "boom", "It broke.")
                writer.attempt_started(run_id, run_id, "s0", 1)
                writer.step_succeeded(run_id, run_id, "s1", {"ok": True})
                writer.attempt_started(run_id, run_id, "s1", 2)
                writer.attempt_started(run_id, run_id, "s2", 3)
                await writer.run_ended(run_id, run_id, "failed", error_code="boom", error="x")
                writer.run_started(run_id, run_id)  # too late: an ended run stays ended
                await writer.drained()
            finally:
                await writer.stop()
            run, steps = await _rows(h, run_id)
        assert (steps["s0"].status, steps["s0"].error_code, steps["s0"].attempts) == (
            "failed",
            "boom",
            1,
        )
        assert (steps["s1"].status, steps["s1"].output) == ("succeeded", {"ok": True})
        assert steps["s2"].status == "running"
        assert (run.status, run.error_code) == ("failed", "boom")

    async def test_a_superseded_workflow_writes_nothing(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=1)
            writer = RecordWriter(h.platform.engine)
            try:
                old = "an-old-workflow"
                writer.run_started(run_id, old)
                writer.attempt_started(run_id, old, "s0", 1)
                writer.step_succeeded(run_id, old, "s0", {"stale": True})
                await writer.run_ended(run_id, old, "succeeded")
            finally:
                await writer.stop()
            run, steps = await _rows(h, run_id)
        assert run.status == "queued", run.status
        assert (steps["s0"].status, steps["s0"].attempts, steps["s0"].output) == (
            "pending",
            0,
            None,
        )

    async def test_a_failed_commit_reaches_whoever_awaits_it(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=1)
            writer = RecordWriter(h.platform.engine)
            try:
                # A value the column cannot store fails the whole commit.
                writer.step_succeeded(run_id, run_id, "s0", {"not json": object()})
                ended = writer.run_ended(run_id, run_id, "succeeded")
                with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own error
                    await ended
                # The writer goes on with what comes next.
                await writer.run_ended(run_id, run_id, "failed", error_code="engine_error")
            finally:
                await writer.stop()
            run, _steps = await _rows(h, run_id)
        assert (run.status, run.error_code) == ("failed", "engine_error")

    async def test_late_writes_never_undo_an_end(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        """A replica that stalled past its takeover wakes and writes what it last saw:
        a step that succeeded elsewhere stays succeeded, a run that ended stays ended."""
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=1)
            writer = RecordWriter(h.platform.engine)
            try:
                writer.attempt_started(run_id, run_id, "s0", 1)
                writer.step_succeeded(run_id, run_id, "s0", {"done": "elsewhere"})
                await writer.run_ended(run_id, run_id, "succeeded")
                # The stalled replica's late writes, same workflow id.
                writer.attempt_started(run_id, run_id, "s0", 1)
                writer.step_failed(run_id, run_id, "s0", "engine_error", "late")
                await writer.run_ended(run_id, run_id, "failed", error_code="engine_error")
            finally:
                await writer.stop()
            run, steps = await _rows(h, run_id)
        assert (run.status, run.error_code) == ("succeeded", None)
        assert (steps["s0"].status, steps["s0"].attempts) == ("succeeded", 1)
        assert steps["s0"].output == {"done": "elsewhere"}


class TestKeptConnection:
    """The writer commits on one connection while commits keep coming (a checkout
    pings the server first), and gives it back when idle, after a failure and on stop."""

    async def test_consecutive_commits_share_one_checkout_and_an_idle_writer_returns_it(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(record_writer, "_KEEP_CONNECTION_SECONDS", 0.2)
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=3)
            pool: Any = h.platform.engine.sync_engine.pool
            checkouts: list[int] = []

            def on_checkout(*_args: Any) -> None:
                checkouts.append(1)

            writer = RecordWriter(h.platform.engine)
            event.listen(h.platform.engine.sync_engine, "checkout", on_checkout)
            try:
                before = pool.checkedout()
                async with _counted(h) as counts:
                    for position in range(3):  # three commits, one after the other
                        writer.attempt_started(run_id, run_id, f"s{position}", position)
                        await writer.drained()
                assert counts["commits"] == 3, counts
                writer_checkouts = len(checkouts)
                held = pool.checkedout() - before
                await asyncio.sleep(0.6)  # idle past the keep time
                after_idle = pool.checkedout() - before
            finally:
                event.remove(h.platform.engine.sync_engine, "checkout", on_checkout)
                await writer.stop()
            _run, steps = await _rows(h, run_id)
        # Kept between commits (the app's own background work may check out beside
        # it, so the pool's count of checkouts is not the writer's alone).
        assert writer_checkouts >= 1
        assert held == 1
        assert after_idle == 0
        assert {step.attempts for step in steps.values()} == {1}

    async def test_after_a_failed_commit_the_next_takes_a_fresh_connection(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        async with harness(make_settings(database_url=database_url)) as h:
            run_id = await _run_rows(h, steps=1)
            pool: Any = h.platform.engine.sync_engine.pool
            writer = RecordWriter(h.platform.engine)
            try:
                before = pool.checkedout()
                failed = writer.step_succeeded(run_id, run_id, "s0", {"not json": object()})
                with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own error
                    await failed
                assert pool.checkedout() == before  # given back, not kept
                await writer.run_ended(run_id, run_id, "failed", error_code="engine_error")
                assert pool.checkedout() == before + 1
            finally:
                await writer.stop()
            assert pool.checkedout() == before  # and on stop
            run, _steps = await _rows(h, run_id)
        assert run.status == "failed"
