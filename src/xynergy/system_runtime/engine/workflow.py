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
from xynergy.system_runtime.definitions.spec import StepSpec, WorkflowSpec, topological_order
from xynergy.system_runtime.engine import records
from xynergy.system_runtime.engine.calls import (
    Identity,
    StepFailed,
    call_operation,
    idempotency_key_for,
)
from xynergy.system_runtime.engine.context import RuntimeContext, current
from xynergy.system_runtime.engine.events import RunEvent
from xynergy.system_runtime.models import RunRecord, StepRecord

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
) -> Any:
    """The body of one operation's DBOS step."""
    context = current()
    sessions = context.platform.sessionmaker
    operation = context.catalogue.get(operation_name)
    if operation is None:
        raise StepFailed("unknown_operation", f"{operation_name} left the catalogue.")

    async def on_attempt() -> None:
        attempt = await records.start_attempt(
            sessions, run_id, step_id, workflow_id=workflow_id, dbos_step_id=dbos_step_id
        )
        if attempt is None:
            # A cancelled workflow woke after the run was resumed: it calls nothing.
            raise StepFailed("superseded", "The run continues in a newer workflow.")
        _publish(  # operation: for the live metrics' per-operation latency (helper "live")
            context,
            run_id,
            "step.started",
            step_id=step_id,
            attempt=attempt,
            operation=operation_name,
        )

    try:
        output = await call_operation(
            context,
            operation=operation,
            payload=payload,
            identity=identity,
            idempotency_key=idempotency_key_for(run_id, step_id),
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            on_attempt=on_attempt,
        )
    except StepFailed as failure:
        await _record_failure(context, run_id, workflow_id, step_id, failure)
        raise
    await _record_success(context, run_id, workflow_id, step_id, output)
    return output


async def _record_failure(
    context: RuntimeContext, run_id: str, workflow_id: str, step_id: str, failure: StepFailed
) -> None:
    await records.set_step(
        context.platform.sessionmaker,
        run_id,
        step_id,
        {
            "status": "failed",
            "error_code": failure.code,
            "error": failure.message,
            "finished_at": utcnow(),
        },
        workflow_id=workflow_id,
    )
    _publish(context, run_id, "step.failed", step_id=step_id, error=failure.code)


async def _record_success(
    context: RuntimeContext, run_id: str, workflow_id: str, step_id: str, output: Any
) -> None:
    await records.set_step(
        context.platform.sessionmaker,
        run_id,
        step_id,
        {"status": "succeeded", "output": output, "finished_at": utcnow(), "error_code": None},
        workflow_id=workflow_id,
    )
    _publish(context, run_id, "step.succeeded", step_id=step_id)


class _Scheduler:
    """Runs one run's steps: dependencies first, at most ``max_parallel`` at once."""

    def __init__(
        self,
        context: RuntimeContext,
        run: RunRecord,
        workflow_id: str,
        spec: WorkflowSpec,
        recorded: dict[str, StepRecord],
    ) -> None:
        self._context = context
        self._run = run
        self._workflow_id = workflow_id
        self._spec = spec
        self._steps = {step.id: step for step in spec.steps}
        self._recorded = recorded
        self._identity = Identity(
            tenant_id=run.tenant_id,
            key_id=run.key_id,
            key_tenant_id=run.key_tenant_id,
            scopes=frozenset(run.scopes),
        )
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
        name = f"run-{self._run.id}-{step.id}"
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
        await records.set_step(
            sessions,
            self._run.id,
            step.id,
            {"status": status, "started_at": utcnow(), "dbos_step_id": marker.step_id},
            workflow_id=self._workflow_id,
        )
        if step.kind == "approval":
            await records.set_run_status(
                sessions,
                self._run.id,
                "waiting",
                only_if_not=_ENDED,
                workflow_id=self._workflow_id,
            )
            _publish(self._context, self._run.id, "step.waiting", step_id=step.id)
            task = asyncio.create_task(self._approval(step), name=name)
        else:
            _publish(self._context, self._run.id, "step.started", step_id=step.id, attempt=1)
            task = asyncio.create_task(self._wait(step), name=name)
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)
        # The task draws its ids at its first instruction: let it, before anything
        # else is launched (a new task runs before this one resumes).
        await asyncio.sleep(0)
        return task

    def _mapping_context(self) -> dict[str, Any]:
        return {
            "input": self._run.input,
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
                await _record_failure(
                    self._context, self._run.id, self._workflow_id, step.id, failure
                )
                raise failure from None
            return await reservation.run_async(
                {"name": f"step:{step.id}"},
                _operation_step,
                self._run.id,
                self._workflow_id,
                step.id,
                step.operation or "",
                payload,
                self._identity,
                step.timeout_seconds or settings.step_timeout_seconds_default,
                step.max_attempts or settings.step_attempts_default,
                reservation.step_id,
            )

    async def _approval(self, step: StepSpec) -> Any:
        settings = self._context.settings
        timeout = step.approval_timeout_seconds or settings.approval_timeout_seconds_default
        message = await DBOS.recv_async(approval_topic(step.id), timeout_seconds=timeout)
        sessions = self._context.platform.sessionmaker
        await records.set_run_status(
            sessions, self._run.id, "running", only_if_not=_ENDED, workflow_id=self._workflow_id
        )
        if not isinstance(message, dict):
            failure = StepFailed(
                "approval_timed_out", f"No approval arrived within {timeout:g} seconds."
            )
        elif message.get("decision") != "approve":
            reason = str(message.get("reason") or "no reason given")
            failure = StepFailed("approval_rejected", f"Rejected: {reason}")
        else:
            output = {"approved": True, "reason": message.get("reason"), "by": message.get("by")}
            await _record_success(self._context, self._run.id, self._workflow_id, step.id, output)
            return output
        await _record_failure(self._context, self._run.id, self._workflow_id, step.id, failure)
        raise failure

    async def _wait(self, step: StepSpec) -> Any:
        seconds = step.wait_seconds or 0.0
        await DBOS.sleep_async(seconds)
        output = {"waited_seconds": seconds}
        await _record_success(self._context, self._run.id, self._workflow_id, step.id, output)
        return output


_ENDED = ("succeeded", "failed", "cancelled")

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


@DBOS.workflow(name=RUN_WORKFLOW)
async def execute_run(run_id: str) -> str:
    """Execute (or, after a crash or a fork, continue) run ``run_id``; its final status."""
    context = current()
    sessions = context.platform.sessionmaker
    begun = await records.begin_run(sessions, run_id, workflow_id=DBOS.workflow_id, not_if=_ENDED)
    if begun is None:
        # Its tenant was deleted while it waited in the queue.
        return "missing"
    run, recorded = begun
    workflow_id = DBOS.workflow_id or run.workflow_id
    spec = WorkflowSpec.model_validate(run.spec)
    _publish(context, run_id, "run.started")
    try:
        await _Scheduler(context, run, workflow_id, spec, recorded).run()
    except StepFailed as failure:
        await records.set_run_status(
            sessions,
            run_id,
            "failed",
            finished=True,
            error_code=failure.code,
            error=failure.message,
            only_if_not=("cancelled",),
            workflow_id=workflow_id,
        )
        _publish(context, run_id, "run.finished", status="failed", error=failure.code)
        log.info("runtime.run_failed", run_id=run_id, error_code=failure.code)
        return "failed"
    except Exception as exc:
        # Not a step's outcome (the database gone for longer than the records'
        # retries, a DBOS error): the run must not stay "running" for ever. It is
        # failed with a code that says so, and a resume continues it.
        log.error("runtime.run_engine_error", run_id=run_id, error=type(exc).__name__)
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
        _publish(context, run_id, "run.finished", status="failed", error="engine_error")
        return "failed"
    await records.set_run_status(
        sessions,
        run_id,
        "succeeded",
        finished=True,
        only_if_not=("cancelled",),
        workflow_id=workflow_id,
    )
    _publish(context, run_id, "run.finished", status="succeeded")
    return "succeeded"
