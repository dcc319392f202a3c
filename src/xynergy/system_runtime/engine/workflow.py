"""The one DBOS workflow every run executes: a DAG of steps, in parallel where it can.

Determinism is what makes DBOS recovery correct: a recovered (or forked) run
replays this code, and each DBOS step id must name the same step as before.
Steps finish in any order, so ids are never drawn when a step finishes:

- an operation's id is reserved (``DBOS.reserve_step``) when the scheduler
  launches it, and launches happen in topological order;
- an approval or a wait reserves one id at launch (unused: it marks where the
  step's ids begin, for a resume's fork), then draws its own ids at the first
  instruction of its task, which the scheduler lets start before it launches
  anything else: a resumed run, which reserves the same ids synchronously for an
  approval already decided, draws every later id exactly as the first run did;
- the scheduler consumes finished steps in launch order, not completion order,
  so what it launches next depends only on the definition and the outcomes.

A step already recorded as succeeded in the run's rows (a resumed run, forked
from its first failed step) is never called again: operations return the
recorded output, approvals and waits reserve the same number of ids and reuse
their recorded outcome.

Only the run's current DBOS workflow writes its rows: a cancelled workflow
still waiting (DBOS does not interrupt a receive or a sleep) may wake after the
run was resumed under a new workflow, and must not rewrite the resumed run.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from dbos import DBOS, StepReservation

from xynergy.platform.db.base import utcnow
from xynergy.platform.logging import get_logger
from xynergy.system_runtime.definitions.mapping import MappingError, resolve
from xynergy.system_runtime.definitions.spec import StepSpec, topological_order
from xynergy.system_runtime.engine import records
from xynergy.system_runtime.engine.calls import (
    Identity,
    StepFailed,
    call_operation,
    idempotency_key_for,
)
from xynergy.system_runtime.engine.context import RuntimeContext, current
from xynergy.system_runtime.engine.events import RunEvent
from xynergy.system_runtime.engine.plan import RunPlan, plan_from_record, plan_from_start
from xynergy.system_runtime.models import StepRecord

__all__ = ["RUN_WORKFLOW", "approval_topic", "execute_run", "stop_waiting"]

log = get_logger(__name__)

RUN_WORKFLOW = "xynergy.runtime.run"
# DBOS ids an approval draws (its receive and the receive's timeout sleep) and a wait draws.
_APPROVAL_IDS = 2
_WAIT_IDS = 1


def approval_topic(step_id: str) -> str:
    return f"approval:{step_id}"


def _publish(context: RuntimeContext, run_id: str, kind: str, **data: Any) -> None:
    context.events.publish(RunEvent(run_id=run_id, type=kind, data=data))


async def _operation_step(
    run_id: str,
    workflow_id: str,
    step_id: str,
    operation_name: str,
    payload: dict[str, Any],
    identity: Identity,
    timeout_seconds: float,
    max_attempts: int,
    dbos_step_id: int,
    attempts_before: int,
) -> Any:
    """The body of one operation's DBOS step: the call, with its retries.

    Its outcome is recorded in the step's row by the workflow code around it,
    not here: a replay returns DBOS's checkpoint without running this body, and
    must still repair a row a crash left behind.
    """
    context = current()
    operation = context.catalogue.get(operation_name)
    if operation is None:
        raise StepFailed("unknown_operation", f"{operation_name} left the catalogue.")

    async def on_attempt(attempt: int) -> None:
        def started(_: object = None) -> None:
            _publish(  # operation: for the live metrics' per-operation latency
                context,
                run_id,
                "step.started",
                step_id=step_id,
                attempt=attempts_before + attempt,
                operation=operation_name,
            )

        if attempt == 1:
            # DBOS refused to start this step if the workflow was cancelled, and only
            # a cancelled workflow is ever superseded: the row's update can follow.
            written = context.records.attempt_started(run_id, workflow_id, step_id, dbos_step_id)
            written.add_done_callback(started)
            return
        # A retry, seconds later: the run may have been cancelled and resumed
        # meanwhile. Its rows say so; a superseded workflow calls nothing more.
        await context.records.drained()
        counted = await records.start_attempt(
            context.platform.sessionmaker,
            run_id,
            step_id,
            workflow_id=workflow_id,
            dbos_step_id=dbos_step_id,
        )
        if counted is None:
            raise _superseded()
        started()

    return await call_operation(
        context,
        operation=operation,
        payload=payload,
        identity=identity,
        idempotency_key=idempotency_key_for(run_id, step_id),
        timeout_seconds=timeout_seconds,
        max_attempts=max_attempts,
        on_attempt=on_attempt,
    )


def _superseded() -> StepFailed:
    return StepFailed("superseded", "The run continues in a newer workflow.")


def _record_failure(
    context: RuntimeContext, run_id: str, workflow_id: str, step_id: str, failure: StepFailed
) -> None:
    written = context.records.step_failed(
        run_id, workflow_id, step_id, failure.code, failure.message
    )
    # Published once the row says so: a reader the event sends to the API sees it.
    written.add_done_callback(
        lambda _: _publish(context, run_id, "step.failed", step_id=step_id, error=failure.code)
    )


def _record_success(
    context: RuntimeContext, run_id: str, workflow_id: str, step_id: str, output: Any
) -> None:
    written = context.records.step_succeeded(run_id, workflow_id, step_id, output)
    written.add_done_callback(
        lambda _: _publish(context, run_id, "step.succeeded", step_id=step_id)
    )


class _Scheduler:
    """Runs one run's steps: dependencies first, at most ``max_parallel`` at once."""

    def __init__(
        self,
        context: RuntimeContext,
        plan: RunPlan,
        workflow_id: str,
        recorded: dict[str, StepRecord],
    ) -> None:
        self._context = context
        self._plan = plan
        self._workflow_id = workflow_id
        self._spec = spec = plan.spec
        self._steps = {step.id: step for step in spec.steps}
        self._recorded = recorded
        self._identity: Identity = plan.identity
        settings = context.settings
        self._slots = asyncio.Semaphore(
            spec.max_parallel_steps or settings.max_parallel_steps_default
        )
        # One per step of the definition (at most steps_max).
        self._outputs: dict[str, Any] = {}  # guard: allow XG005 one per step
        # Approvals and waits in progress: a cancel ends them (see stop_waiting).
        self._waiting: set[asyncio.Task[Any]] = set()  # guard: allow XG005 one per step
        self._stopped = False

    def stop(self) -> None:
        """The run was cancelled: end its approvals and waits now; launch nothing more."""
        self._stopped = True
        for task in self._waiting:
            task.cancel()

    def _succeeded(self, step_id: str) -> StepRecord | None:
        record = self._recorded.get(step_id)
        return record if record is not None and record.status == "succeeded" else None

    async def run(self) -> None:
        pending = topological_order(self._spec)
        running: dict[str, asyncio.Task[Any]] = {}
        done: set[str] = set()
        failure: StepFailed | None = None
        _EXECUTING[self._workflow_id] = self
        try:
            while pending or running:
                if failure is None and not self._stopped:
                    for step_id in list(pending):
                        if set(self._steps[step_id].depends_on) <= done:
                            pending.remove(step_id)
                            running[step_id] = await self._launch(self._steps[step_id])
                if not running:
                    break
                step_id = next(iter(running))
                try:
                    self._outputs[step_id] = await running.pop(step_id)
                    done.add(step_id)
                except StepFailed as exc:
                    # Steps already running finish (their calls are in flight); no new
                    # step starts. The first failure in launch order is the run's.
                    failure = failure or exc
                except asyncio.CancelledError:
                    this = asyncio.current_task()
                    if not self._stopped or (this is not None and this.cancelling()):
                        raise  # this run itself is being stopped (shutdown): DBOS recovers it
                    failure = failure or StepFailed("cancelled", "Cancelled on request.")
        finally:
            _EXECUTING.pop(self._workflow_id, None)
            for task in running.values():
                task.cancel()
        if failure is not None:
            raise failure

    async def _launch(self, step: StepSpec) -> asyncio.Task[Any]:
        name = f"run-{self._plan.run_id}-{step.id}"
        if step.kind == "operation":
            reservation = DBOS.reserve_step()
            return asyncio.create_task(self._operation(step, reservation), name=name)
        # Where this step's ids begin: a resume forks from here if the step is unfinished.
        marker = DBOS.reserve_step()
        done = self._succeeded(step.id)
        if done is not None:
            for _ in range(_APPROVAL_IDS if step.kind == "approval" else _WAIT_IDS):
                DBOS.reserve_step()  # the ids its first execution drew, left unused
            return asyncio.create_task(_finished(done.output), name=name)
        sessions = self._context.platform.sessionmaker
        status = "waiting" if step.kind == "approval" else "running"
        # Written directly, after what the run queued (its "running" among them): a
        # signal is accepted once the row says "waiting", so it must not be undone.
        await self._context.records.drained()
        await records.set_step(
            sessions,
            self._plan.run_id,
            step.id,
            {"status": status, "started_at": utcnow(), "dbos_step_id": marker.step_id},
            workflow_id=self._workflow_id,
        )
        if step.kind == "approval":
            await records.set_run_status(
                sessions,
                self._plan.run_id,
                "waiting",
                only_if_not=_ENDED,
                workflow_id=self._workflow_id,
            )
            _publish(self._context, self._plan.run_id, "step.waiting", step_id=step.id)
            task = asyncio.create_task(self._approval(step), name=name)
        else:
            _publish(self._context, self._plan.run_id, "step.started", step_id=step.id, attempt=1)
            task = asyncio.create_task(self._wait(step), name=name)
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)
        # The task draws its ids at its first instruction: let it, before anything
        # else is launched (a new task runs before this one resumes).
        await asyncio.sleep(0)
        return task

    def _mapping_context(self) -> dict[str, Any]:
        return {
            "input": self._plan.input,
            "steps": {step_id: {"output": output} for step_id, output in self._outputs.items()},
        }

    async def _operation(self, step: StepSpec, reservation: StepReservation) -> Any:
        settings = self._context.settings
        done = self._succeeded(step.id)
        if done is not None:
            # A resumed (or recovered) run: this call already happened. Its recorded
            # answer is the output, at the same DBOS step id, with no call and no write.
            return await reservation.run_async(
                {"name": f"step:{step.id}"}, _recorded_output, done.output
            )
        async with self._slots:
            try:
                payload = resolve(step.input, self._mapping_context())
            except MappingError as exc:
                failure = StepFailed("invalid_step_input", str(exc))
                _record_failure(
                    self._context, self._plan.run_id, self._workflow_id, step.id, failure
                )
                raise failure from None
            recorded = self._recorded.get(step.id)
            try:
                output = await reservation.run_async(
                    {"name": f"step:{step.id}"},
                    _operation_step,
                    self._plan.run_id,
                    self._workflow_id,
                    step.id,
                    step.operation or "",
                    payload,
                    self._identity,
                    step.timeout_seconds or settings.step_timeout_seconds_default,
                    step.max_attempts or settings.step_attempts_default,
                    reservation.step_id,
                    recorded.attempts if recorded is not None else 0,
                )
            except StepFailed as failure:
                _record_failure(
                    self._context, self._plan.run_id, self._workflow_id, step.id, failure
                )
                raise
            _record_success(self._context, self._plan.run_id, self._workflow_id, step.id, output)
            return output

    async def _approval(self, step: StepSpec) -> Any:
        settings = self._context.settings
        timeout = step.approval_timeout_seconds or settings.approval_timeout_seconds_default
        message = await DBOS.recv_async(approval_topic(step.id), timeout_seconds=timeout)
        sessions = self._context.platform.sessionmaker
        still_ours = await records.set_run_status(
            sessions,
            self._plan.run_id,
            "running",
            only_if_not=_ENDED,
            workflow_id=self._workflow_id,
        )
        if not still_ours:
            # Resumed under a newer workflow, or ended, while this one waited: DBOS
            # does not interrupt a receive, so this is where an old workflow stops.
            raise _superseded()
        if not isinstance(message, dict):
            failure = StepFailed(
                "approval_timed_out", f"No approval arrived within {timeout:g} seconds."
            )
        elif message.get("decision") != "approve":
            reason = str(message.get("reason") or "no reason given")
            failure = StepFailed("approval_rejected", f"Rejected: {reason}")
        else:
            output = {"approved": True, "reason": message.get("reason"), "by": message.get("by")}
            _record_success(self._context, self._plan.run_id, self._workflow_id, step.id, output)
            return output
        _record_failure(self._context, self._plan.run_id, self._workflow_id, step.id, failure)
        raise failure

    async def _wait(self, step: StepSpec) -> Any:
        seconds = step.wait_seconds or 0.0
        await DBOS.sleep_async(seconds)
        if not await records.is_current(
            self._context.platform.sessionmaker, self._plan.run_id, self._workflow_id
        ):
            raise _superseded()  # as after an approval's wait
        output = {"waited_seconds": seconds}
        _record_success(self._context, self._plan.run_id, self._workflow_id, step.id, output)
        return output


_ENDED = ("succeeded", "failed", "cancelled")
# How long a dequeued run waits for its rows to commit, and how often it looks: the
# start's commit takes milliseconds; a lock held by another writer, a few seconds.
_ROW_WAIT_SECONDS = 10.0
_ROW_POLL_SECONDS = 0.02

# The runs executing in this process, by DBOS workflow id: bounded by the queue's
# worker_concurrency (plus recovered runs), each removed when its run ends.
_EXECUTING: dict[str, _Scheduler] = {}  # guard: allow XG004 one per executing run


def stop_waiting(workflow_id: str) -> None:
    """End a cancelled run's approvals and waits if it executes in this process.

    DBOS's cancel only marks the workflow: a receive or a durable sleep in progress
    would hold its task (and DBOS's polling of it) until its timeout, days away.
    A run executing on another replica wakes at that timeout, and writes nothing.
    """
    scheduler = _EXECUTING.get(workflow_id)
    if scheduler is not None:
        scheduler.stop()


async def _recorded_output(output: Any) -> Any:
    return output


async def _finished(output: Any) -> Any:
    return output


async def _load_when_committed(
    context: RuntimeContext, run_id: str, *, with_steps: bool
) -> tuple[RunPlan, dict[str, StepRecord]] | None:
    """The run's rows. A start by an earlier version queued the run while its rows
    committed, so a run dequeued at once may look for them a moment early: it looks
    again, for a bounded time, before concluding they never committed."""
    deadline = asyncio.get_running_loop().time() + _ROW_WAIT_SECONDS
    while True:
        loaded = await records.load_run(
            context.platform.sessionmaker, run_id, with_steps=with_steps
        )
        if loaded is not None:
            run, recorded = loaded
            return plan_from_record(run), recorded
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(_ROW_POLL_SECONDS)


async def _plan(
    context: RuntimeContext, run_id: str, workflow_id: str, start: dict[str, Any] | None
) -> tuple[RunPlan, dict[str, StepRecord]] | None:
    # The run's first workflow (its id is the run's) needs no step rows: a recovery
    # replays its finished steps from DBOS's checkpoints. A resume's fork does: the
    # steps that finished after its fork point are skipped by their rows.
    first = workflow_id == run_id
    if first and start is not None:
        plan = plan_from_start(run_id, start, context.checked_specs)
        if plan is not None:
            return plan, {}
    return await _load_when_committed(context, run_id, with_steps=not first)


@DBOS.workflow(name=RUN_WORKFLOW)
async def execute_run(run_id: str, start: dict[str, Any] | None = None) -> str:
    """Execute (or, after a crash or a fork, continue) run ``run_id``; its final status.

    ``start`` (engine/plan.py) spares the run's first workflow its row's read; runs
    queued without it (by reconcile, or by the previous version) read the row.
    """
    context = current()
    sessions = context.platform.sessionmaker
    workflow_id = DBOS.workflow_id or run_id
    planned = await _plan(context, run_id, workflow_id, start)
    if planned is None:
        # Its rows never committed, or its tenant was deleted while it waited.
        return "missing"
    plan, recorded = planned
    # Every event is published once its row says so: a live stream reads the rows
    # after subscribing, so what it missed on the bus is in what it read.
    context.records.run_started(run_id, workflow_id).add_done_callback(
        lambda _: _publish(context, run_id, "run.started")
    )
    code: str | None = None
    message: str | None = None
    try:
        await _Scheduler(context, plan, workflow_id, recorded).run()
    except StepFailed as failure:
        status, code, message = "failed", failure.code, failure.message
        log.info("runtime.run_failed", run_id=run_id, error_code=failure.code)
    except Exception as exc:
        # Not a step's outcome (the database gone for longer than the records'
        # retries, a DBOS error): the run must not stay "running" for ever. It is
        # failed with a code that says so, and a resume continues it.
        log.error("runtime.run_engine_error", run_id=run_id, error=type(exc).__name__)
        status, code = "failed", "engine_error"
        message = "The run stopped on an internal error; resume it to continue."
    else:
        status = "succeeded"
    try:
        # Committed after every update its steps queued: the run's rows agree.
        await context.records.run_ended(run_id, workflow_id, status, error_code=code, error=message)
    except Exception as exc:
        log.error("runtime.run_end_unrecorded", run_id=run_id, error=type(exc).__name__)
        with contextlib.suppress(Exception):
            await records.set_run_status(
                sessions,
                run_id,
                "failed",
                finished=True,
                error_code="engine_error",
                error="The run stopped on an internal error; resume it to continue.",
                only_if_not=("cancelled",),
                workflow_id=workflow_id,
            )
        status, code = "failed", "engine_error"
    # A cancel ends a run with a "cancelled" step failure; its row says cancelled.
    published = "cancelled" if code == "cancelled" else status
    _publish(context, run_id, "run.finished", status=published, error=code)
    return status
