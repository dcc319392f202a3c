"""One run's progress as a stream of events: a snapshot, the changes, heartbeats, an end.

The run's rows are the truth; the in-process bus (``RunEvents``) is only a
latency optimisation. The stream hears the bus at once when this replica executes
the run, and reads the rows every ``live_poll_seconds`` in any case, so a run
executing on another replica (or a change nobody published, such as a cancel) is
followed too. Both sources go through one record of what the watcher has been
told (each step's status and attempts), so a change is told once, whichever
source saw it first.

Everything runs in the caller's task: waiting is ``asyncio.timeout`` around the
subscription's queue, which starts no task, and the subscription ends with the
generator (use it with ``contextlib.aclosing``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from xynergy.platform import draining
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.engine.events import RunEvent, RunEvents
from xynergy.system_runtime.live.repository import Progress, StepState, load_progress
from xynergy.system_runtime.runs.schemas import RunDetail

__all__ = ["ENDED", "SHUTTING_DOWN", "LiveEvent", "follow"]

ENDED = frozenset({"succeeded", "failed", "cancelled"})
SHUTTING_DOWN = "shutting_down"  # a ``dropped`` event's reason when the replica stops


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """``type``: snapshot, run.started, step.started, step.waiting, step.succeeded,
    step.failed, heartbeat, run.finished (final) or dropped (final: too slow, or the
    replica is stopping; ``reason`` says which)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.type in ("run.finished", "dropped")

    def message(self, run_id: str) -> dict[str, Any]:
        return {"type": self.type, "run_id": run_id, **self.data}


_STEP_EVENT = {
    "running": "step.started",
    "waiting": "step.waiting",
    "succeeded": "step.succeeded",
    "failed": "step.failed",
}


class _Told:
    """What the watcher has been told: each step's (status, attempts), the run's status."""

    def __init__(self, snapshot: RunDetail) -> None:
        self.run_status: str = snapshot.status
        told: dict[str, tuple[str, int]] = {
            step.id: (step.status, step.attempts) for step in snapshot.steps
        }
        self.steps = told  # guard: allow XG005 one entry per step of the run

    def step_changed(self, step_id: str, state: StepState) -> LiveEvent | None:
        """The event telling ``state`` of ``step_id``, or None if it tells nothing new.

        A new status is told; within "running", only a new attempt (a retry) is.
        """
        status, attempts = self.steps.get(step_id, ("pending", 0))
        new_attempts = max(attempts, state.attempts)
        self.steps[step_id] = (state.status, new_attempts)
        kind = _STEP_EVENT.get(state.status)
        retried = state.status == "running" and new_attempts > attempts
        if kind is None or (state.status == status and not retried):
            return None
        data: dict[str, Any] = {"step_id": step_id}
        if state.status == "running":
            data["attempt"] = max(new_attempts, 1)
        if state.status == "failed":
            data["error"] = state.error_code
        return LiveEvent(kind, data)

    def _ran_unseen(self, step_id: str, state: StepState) -> bool:
        """Whether ``state`` ends an attempt the watcher was never told had started."""
        told_status, _ = self.steps.get(step_id, ("pending", 0))
        ended = state.status in ("succeeded", "failed") and state.attempts > 0
        return ended and told_status in ("pending", "waiting")

    def run_changed(self, status: str, error_code: str | None) -> LiveEvent | None:
        if status == self.run_status:
            return None
        self.run_status = status
        if status in ENDED:
            return LiveEvent("run.finished", {"status": status, "error": error_code})
        if status == "running":
            return LiveEvent("run.started")
        return None

    def from_bus(self, event: RunEvent) -> LiveEvent | None:
        data = event.data
        if event.type == "run.started":
            return self.run_changed("running", None)
        status = {
            "step.started": "running",
            "step.waiting": "waiting",
            "step.succeeded": "succeeded",
            "step.failed": "failed",
        }.get(event.type)
        step_id = data.get("step_id")
        if status is None or not isinstance(step_id, str):
            return None
        attempts = int(data.get("attempt") or self.steps.get(step_id, ("", 0))[1])
        return self.step_changed(step_id, StepState(status, attempts, data.get("error")))

    def from_rows(self, progress: Progress) -> list[LiveEvent]:
        told: list[LiveEvent] = []
        for step_id, state in progress.steps.items():
            if self._ran_unseen(step_id, state):
                # It started and ended between two polls: the watcher is told it
                # started first, in the order the bus would have told it.
                started = self.step_changed(step_id, StepState("running", state.attempts, None))
                told.extend([started] if started is not None else [])
            if (event := self.step_changed(step_id, state)) is not None:
                told.append(event)
        run_event = self.run_changed(progress.status, progress.error_code)
        if run_event is not None and run_event.type == "run.started":
            told.insert(0, run_event)  # a run starts before its steps do
        elif run_event is not None:
            told.append(run_event)  # and ends after them
        return told


async def follow(
    context: RuntimeContext,
    events: RunEvents,
    snapshot: RunDetail,
    *,
    heartbeat_seconds: float,
    poll_seconds: float,
) -> AsyncGenerator[LiveEvent, None]:
    """The run's progress from ``snapshot`` (already read, for its tenant) to its end."""
    sessions = context.platform.sessionmaker
    told = _Told(snapshot)
    # Subscribed before the snapshot is sent: nothing published after it is missed
    # (an event the snapshot already shows is told at most once, by ``told``).
    with events.subscribe(snapshot.id) as subscription:
        yield LiveEvent("snapshot", {"run": snapshot.model_dump(mode="json")})
        if snapshot.status in ENDED:
            yield LiveEvent(
                "run.finished", {"status": snapshot.status, "error": snapshot.error_code}
            )
            return
        now = time.monotonic()
        next_poll, next_heartbeat = now + poll_seconds, now + heartbeat_seconds
        while True:
            bus_event: RunEvent | None = None
            try:
                async with asyncio.timeout(max(0.0, min(next_poll, next_heartbeat) - now)):
                    bus_event = await subscription.queue.get()
            except TimeoutError:
                pass
            if subscription.dropped:
                yield LiveEvent("dropped", {"reason": "slow_consumer"})
                return
            if draining.started():
                # This replica is stopping: the client reconnects (through the proxy,
                # to another replica) rather than hold the shutdown open to the run's end.
                yield LiveEvent("dropped", {"reason": SHUTTING_DOWN})
                return
            told_now: list[LiveEvent] = []
            now = time.monotonic()
            if bus_event is not None and bus_event.type == "run.finished":
                # The end is told from the rows: they hold the final status (a run
                # cancelled meanwhile stays cancelled) and every step's last state.
                next_poll = now
            elif bus_event is not None and (event := told.from_bus(bus_event)) is not None:
                told_now.append(event)
            if now >= next_poll:
                progress = await load_progress(sessions, snapshot.id)
                if progress is None:  # deleted with its tenant
                    told_now.append(LiveEvent("run.finished", {"status": "deleted", "error": None}))
                else:
                    told_now.extend(told.from_rows(progress))
                now = time.monotonic()
                next_poll = now + poll_seconds
            for event in told_now:
                yield event
                if event.final:
                    return
            if told_now:
                next_heartbeat = now + heartbeat_seconds
            elif now >= next_heartbeat:
                yield LiveEvent("heartbeat")
                next_heartbeat = now + heartbeat_seconds
            now = time.monotonic()
