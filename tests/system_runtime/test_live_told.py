"""What a watcher following a run from its rows is told when polls are far apart."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from xynergy.system_runtime.live.progress import _Told
from xynergy.system_runtime.live.repository import Progress, StepState


def _watcher(*steps: tuple[str, str, int]) -> _Told:
    snapshot = SimpleNamespace(
        status="running",
        steps=[SimpleNamespace(id=i, status=s, attempts=a) for i, s, a in steps],
    )
    return _Told(cast(Any, snapshot))


def _told(watcher: _Told, status: str, **steps: StepState) -> list[tuple[str, Any]]:
    events = watcher.from_rows(Progress(status=status, error_code=None, steps=steps))
    return [(event.type, event.data.get("step_id")) for event in events]


class TestFromRows:
    def test_a_step_that_started_and_ended_between_two_polls_is_told_started_first(self) -> None:
        watcher = _watcher(("a", "succeeded", 1), ("b", "pending", 0))
        told = _told(watcher, "succeeded", a=StepState("succeeded", 1), b=StepState("succeeded", 1))
        assert told == [("step.started", "b"), ("step.succeeded", "b"), ("run.finished", None)]

    def test_a_step_seen_running_is_not_told_started_twice(self) -> None:
        watcher = _watcher(("a", "running", 1))
        assert _told(watcher, "running", a=StepState("succeeded", 1)) == [("step.succeeded", "a")]

    def test_an_approval_that_ran_between_two_polls_is_told_started_after_waiting(self) -> None:
        watcher = _watcher(("gate", "waiting", 0))
        told = _told(watcher, "running", gate=StepState("failed", 1, "boom"))
        assert told == [("step.started", "gate"), ("step.failed", "gate")]

    def test_a_run_seen_started_with_its_first_step_is_told_started_first(self) -> None:
        watcher = _watcher(("a", "pending", 0))
        watcher.run_status = "queued"
        assert _told(watcher, "running", a=StepState("running", 1)) == [
            ("run.started", None),
            ("step.started", "a"),
        ]

    def test_a_step_failed_before_any_attempt_is_not_told_started(self) -> None:
        watcher = _watcher(("a", "pending", 0))
        assert _told(watcher, "running", a=StepState("failed", 0, "cancelled")) == [
            ("step.failed", "a")
        ]
