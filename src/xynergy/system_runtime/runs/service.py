"""Runs: the rules of starting, reading, cancelling, resuming and signalling them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageParams, created_page_rows, split_page
from xynergy.platform.schemas import Page
from xynergy.system_runtime.definitions.lookup import find_definition
from xynergy.system_runtime.definitions.spec import (
    DefinitionProblems,
    WorkflowSpec,
    check_definition,
)
from xynergy.system_runtime.engine import control
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.engine.plan import start_arguments
from xynergy.system_runtime.models import RunRecord, StepRecord
from xynergy.system_runtime.runs.schemas import (
    RunDetail,
    RunFilters,
    RunStart,
    RunSummary,
    Signal,
    StepView,
)

__all__ = [
    "cancel_run",
    "get_run",
    "list_runs",
    "required_scopes",
    "resume_run",
    "signal_run",
    "start_run",
]

log = get_logger(__name__)

_ACTIVE = ("queued", "running", "waiting")
_RESUMABLE = ("failed", "cancelled")
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def required_scopes(spec: WorkflowSpec, context: RuntimeContext) -> frozenset[str]:
    """Every scope the definition's operations need."""
    scopes: set[str] = set()
    for step in spec.steps:
        operation = context.catalogue.get(step.operation or "")
        if operation is not None:
            scopes |= operation.scopes
    return frozenset(scopes)


def _check_input(spec: WorkflowSpec, values: dict[str, Any], context: RuntimeContext) -> None:
    problems: list[str] = []
    size = len(json.dumps(values, separators=(",", ":")))
    if size > context.settings.input_max_bytes:
        problems.append(f"input: {size} bytes, at most {context.settings.input_max_bytes}")
    for name in sorted(set(values) - set(spec.inputs)):
        problems.append(f"input.{name}: not an input of {spec.name}")
    for name, declared in spec.inputs.items():
        if name not in values:
            if declared.required:
                problems.append(f"input.{name}: required")
            continue
        value = values[name]
        # bool is an int to Python, never to JSON Schema.
        wrong_bool = isinstance(value, bool) and declared.type in ("number", "integer")
        if wrong_bool or not isinstance(value, _JSON_TYPES[declared.type]):
            problems.append(f"input.{name}: must be {declared.type}")
    if problems:
        raise ValidationFailed("; ".join(problems))


async def start_run(
    context: RuntimeContext,
    *,
    caller: AuthContext,
    body: RunStart,
    idempotency_key: str | None,
) -> RunRecord:
    """Record the run and queue it; the same idempotency key answers the same run."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        if idempotency_key is not None:
            existing = await _by_idempotency_key(session, caller.tenant_id, idempotency_key)
            if existing is not None:
                return _same_start(existing, body)
        found = await find_definition(
            session,
            tenant_id=caller.tenant_id,
            name=body.definition,
            version=body.version,
            checked=context.checked_specs,
        )
        if not found.checked:
            try:
                check_definition(found.spec, catalogue=context.catalogue, settings=context.settings)
            except DefinitionProblems as exc:
                raise ValidationFailed(f"The definition can no longer run: {exc}") from None
            owner = "" if found.built_in else caller.tenant_id
            context.checked_specs.put(owner, body.definition, found.version, found.spec)
        missing = sorted(required_scopes(found.spec, context) - caller.scopes)
        if missing and not caller.is_admin:
            raise Forbidden(f"This workflow's steps need scopes the key lacks: {missing}.")
        _check_input(found.spec, body.input, context)
        run_id = new_id()
        run = RunRecord(
            id=run_id,
            tenant_id=caller.tenant_id,
            definition_name=found.spec.name,
            definition_version=found.version,
            built_in=found.built_in,
            spec=found.spec.model_dump(mode="json"),
            input=body.input,
            status="queued",
            workflow_id=run_id,
            resumes=0,
            key_id=caller.key_id,
            key_tenant_id=caller.key_tenant_id,
            scopes=sorted(caller.scopes),
            idempotency_key=idempotency_key,
            created_at=utcnow(),
        )
        session.add(run)
        for position, step in enumerate(found.spec.steps):
            session.add(
                StepRecord(
                    run_id=run_id,
                    step_id=step.id,
                    position=position,
                    kind=step.kind,
                    status="pending",
                    attempts=0,
                )
            )
        try:
            await session.flush()
        except IntegrityError:
            # Two starts with one idempotency key at once: the other one won.
            await session.rollback()
            if idempotency_key is None:
                raise
            existing = await _by_idempotency_key(session, caller.tenant_id, idempotency_key)
            if existing is None:
                raise
            return _same_start(existing, body)
    # Queued once the rows committed, never before: the run's first workflow gets what
    # it executes as DBOS arguments and trusts them instead of reading its row
    # (engine/plan.py), so it must never run for rows that might not commit. A process
    # that dies between the two leaves a queued row, which reconcile queues.
    await _enqueue_or_fail(context, run)
    return run


async def _enqueue(run: RunRecord) -> None:
    await control.enqueue(
        run.id, workflow_id=run.workflow_id, tenant_id=run.tenant_id, start=start_arguments(run)
    )


async def _enqueue_or_fail(context: RuntimeContext, run: RunRecord) -> None:
    await _enqueued_or_fail(
        context, run, asyncio.create_task(_enqueue(run), name=f"runtime-enqueue-{run.id}")
    )


async def _enqueued_or_fail(
    context: RuntimeContext, run: RunRecord, queued: asyncio.Future[None]
) -> None:
    """Await the run's enqueue; if it failed, the run is failed (resumable) and 503."""
    try:
        await queued
    except Exception as exc:
        log.warning("runtime.enqueue_failed", run_id=run.id, error=type(exc).__name__)
        async with unit_of_work(context.platform.sessionmaker) as session:
            stored = await session.get(RunRecord, run.id)
            if stored is not None:
                stored.status = "failed"
                stored.error_code = "engine_unavailable"
                stored.error = "The workflow engine could not queue the run; resume it."
                stored.finished_at = utcnow()
        raise UpstreamUnavailable("The workflow engine could not queue the run.") from None


def _same_start(existing: RunRecord, body: RunStart) -> RunRecord:
    if existing.definition_name != body.definition or existing.input != body.input:
        raise Conflict("This Idempotency-Key already started a different run.")
    return existing


async def _by_idempotency_key(session: AsyncSession, tenant_id: str, key: str) -> RunRecord | None:
    return await session.scalar(
        select(RunRecord)
        .where(RunRecord.tenant_id == tenant_id, RunRecord.idempotency_key == key)
        .limit(1)
    )


async def _owned_run(session: AsyncSession, tenant_id: str, run_id: str) -> RunRecord:
    run = await session.get(RunRecord, run_id)
    if run is None or run.tenant_id != tenant_id:
        raise NotFound("No such workflow run.")
    return run


async def _steps(session: AsyncSession, run_id: str) -> Sequence[StepRecord]:
    return (
        await session.scalars(
            select(StepRecord)
            .where(StepRecord.run_id == run_id)
            .order_by(StepRecord.position)
            .limit(10_000)
        )
    ).all()


def _summary(output: Any, limit: int) -> str | None:
    if output is None:
        return None
    text = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration_ms(step: StepRecord) -> int | None:
    if step.started_at is None or step.finished_at is None:
        return None
    return int((step.finished_at - step.started_at).total_seconds() * 1000)


def run_detail(run: RunRecord, steps: Sequence[StepRecord], summary_chars: int) -> RunDetail:
    spec = WorkflowSpec.model_validate(run.spec)
    specs = {step.id: step for step in spec.steps}
    views = [
        StepView(
            id=step.step_id,
            kind=step.kind,
            operation=specs[step.step_id].operation if step.step_id in specs else None,
            depends_on=specs[step.step_id].depends_on if step.step_id in specs else [],
            status=step.status,
            attempts=step.attempts,
            error_code=step.error_code,
            error=step.error,
            started_at=step.started_at,
            finished_at=step.finished_at,
            duration_ms=_duration_ms(step),
            output_summary=_summary(step.output, summary_chars),
        )
        for step in steps
    ]
    return RunDetail(**RunSummary.model_validate(run).model_dump(), steps=views)


async def get_run(
    context: RuntimeContext, session: AsyncSession, *, tenant_id: str, run_id: str
) -> RunDetail:
    run = await _owned_run(session, tenant_id, run_id)
    return run_detail(run, await _steps(session, run.id), context.settings.output_summary_max_chars)


async def list_runs(
    session: AsyncSession, *, tenant_id: str, filters: RunFilters, params: PageParams
) -> Page[RunSummary]:
    query = select(RunRecord).where(RunRecord.tenant_id == tenant_id)
    if filters.status is not None:
        query = query.where(RunRecord.status == filters.status)
    if filters.definition is not None:
        query = query.where(RunRecord.definition_name == filters.definition)
    if filters.started_after is not None:
        query = query.where(RunRecord.created_at >= filters.started_after)
    if filters.started_before is not None:
        query = query.where(RunRecord.created_at < filters.started_before)
    rows = await created_page_rows(session, query, RunRecord, params)
    items, cursor = split_page(rows, params, lambda run: (run.created_at, run.id))
    return Page[RunSummary](
        items=[RunSummary.model_validate(run) for run in items], next_cursor=cursor
    )


async def cancel_run(context: RuntimeContext, *, tenant_id: str, run_id: str) -> RunRecord:
    """Stop a run between steps; a step in flight finishes, none starts after it."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        run = await _owned_run(session, tenant_id, run_id)
        if run.status not in _ACTIVE:
            raise Conflict(f"The run is {run.status}; only a queued or running run is cancelled.")
        await control.cancel(run.workflow_id)
        run.status = "cancelled"
        run.error_code = "cancelled"
        run.error = "Cancelled on request."
        run.finished_at = utcnow()
    # Once the row says cancelled, so the run's own last write cannot race it.
    control.stop_cancelled(run.workflow_id)
    return run


async def resume_run(context: RuntimeContext, *, tenant_id: str, run_id: str) -> RunRecord:
    """Continue a failed or cancelled run from its first unfinished step (a DBOS fork):
    completed steps keep their recorded outputs and are never called again."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        run = await _owned_run(session, tenant_id, run_id)
        if run.status not in _RESUMABLE:
            raise Conflict(f"The run is {run.status}; only a failed or cancelled run resumes.")
        steps = await _steps(session, run.id)
        unfinished = [step for step in steps if step.status != "succeeded"]
        known = [step.dbos_step_id for step in unfinished if step.dbos_step_id is not None]
        # Before the first unfinished step DBOS replays its records; from it on the
        # steps run again, and any completed among them returns its recorded output.
        start_step = min(known) if known else 0
        previous = run.workflow_id
        # Never queued (the engine failed at start): queue it now, under its own id.
        fork = await control.workflow_exists(previous)
        workflow_id = f"{run.id}-resume-{run.resumes + 1}" if fork else previous
        # Claimed by a conditional update: of two resumes at once, one wins.
        claimed = await session.execute(
            update(RunRecord)
            .where(
                RunRecord.id == run.id,
                RunRecord.workflow_id == previous,
                RunRecord.status.in_(_RESUMABLE),
            )
            .values(
                workflow_id=workflow_id,
                resumes=RunRecord.resumes + 1,
                status="queued",
                error_code=None,
                error=None,
                finished_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict("The run is being resumed already.")
        for step in unfinished:
            step.status = "pending"
            step.error_code = None
            step.error = None
            step.finished_at = None
    # Committed before the new workflow exists: it writes only to a row naming it
    # (records.set_run_status), so it must never start before the row does. Had this
    # process died here, reconcile would queue the run under that id.
    try:
        if fork:
            await control.fork(
                previous,
                start_step=start_step,
                tenant_id=tenant_id,
                new_workflow_id=workflow_id,
            )
        else:
            await control.enqueue(run.id, workflow_id=workflow_id, tenant_id=tenant_id)
    except Exception as exc:
        log.warning("runtime.resume_failed", run_id=run.id, error=type(exc).__name__)
        async with unit_of_work(context.platform.sessionmaker) as session:
            await session.execute(
                update(RunRecord)
                .where(RunRecord.id == run.id, RunRecord.workflow_id == workflow_id)
                .values(
                    status="failed",
                    error_code="engine_unavailable",
                    error="The workflow engine could not queue the run; resume it.",
                    finished_at=utcnow(),
                )
            )
        raise UpstreamUnavailable("The workflow engine could not queue the run.") from None
    async with unit_of_work(context.platform.sessionmaker) as session:
        return await _owned_run(session, tenant_id, run_id)


async def signal_run(
    context: RuntimeContext, *, caller: AuthContext, run_id: str, body: Signal
) -> RunRecord:
    """Deliver an approval or a rejection to a waiting approval step."""
    async with unit_of_work(context.platform.sessionmaker) as session:
        run = await _owned_run(session, caller.tenant_id, run_id)
        step = await session.get(StepRecord, (run.id, body.step_id))
        if step is None:
            raise NotFound(f"The run has no step {body.step_id!r}.")
        if step.kind != "approval" or step.status != "waiting" or run.status not in _ACTIVE:
            raise Conflict(f"Step {body.step_id!r} is not waiting for a signal.")
        await control.signal(
            run.workflow_id,
            body.step_id,
            {"decision": body.decision, "reason": body.reason, "by": caller.key_id},
        )
        return run
