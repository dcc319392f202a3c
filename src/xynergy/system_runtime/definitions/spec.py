"""What a workflow definition is, and the checks that make one safe to run.

A definition is a DAG of steps. A step is a catalogue operation, an ``approval``
(waits durably for a signal) or a ``wait`` (durable sleep). An operation's input
is built by a mapping: literal JSON, in which an object ``{"$ref": "<pointer>"}``
is replaced by the value an RFC 6901 JSON pointer names in the run's context,
``/input/...`` (the run's input) or ``/steps/<id>/output/...`` (an earlier step's
output). Nothing is evaluated: a pointer only selects.
"""

from __future__ import annotations

import graphlib
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import jsonpointer
from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.json_value import JsonObject
from xynergy.platform.text import PlainText
from xynergy.system_runtime.catalogue import Catalogue
from xynergy.system_runtime.config import RuntimeSettings

__all__ = [
    "REF",
    "DefinitionProblems",
    "InputSpec",
    "StepSpec",
    "WorkflowSpec",
    "check_definition",
    "iter_refs",
    "topological_order",
]

REF = "$ref"
# Hard ceilings of the schema; the settings may only lower them.
_STEPS_HARD_MAX = 500
_INPUTS_HARD_MAX = 50

StepId = Annotated[
    str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["research"])
]
DefinitionName = Annotated[
    str,
    Field(max_length=80, pattern=r"^[a-z][a-z0-9_.-]{0,79}$", examples=["campaign-from-research"]),
]
InputName = Annotated[str, Field(max_length=40, pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Description = Annotated[str, PlainText(max_length=2000)]
OperationName = Annotated[str, Field(max_length=80, pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")]
InputType = Literal["string", "number", "integer", "boolean", "array", "object"]


class InputSpec(BaseModel):
    """One named input of a run."""

    model_config = ConfigDict(extra="forbid")

    type: InputType
    required: bool = True
    description: Description = ""


class StepSpec(BaseModel):
    """One step of a definition."""

    model_config = ConfigDict(extra="forbid")

    id: StepId
    kind: Literal["operation", "approval", "wait"] = "operation"
    operation: OperationName | None = Field(
        default=None, description="A catalogue operation (kind operation)."
    )
    input: JsonObject = Field(
        default_factory=dict,
        description='The operation\'s input; {"$ref": "/input/x"} or '
        '{"$ref": "/steps/<id>/output/..."} values are filled from the run.',
    )
    depends_on: list[StepId] = Field(default_factory=list, max_length=_STEPS_HARD_MAX)
    timeout_seconds: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1)
    wait_seconds: float | None = Field(default=None, gt=0, description="Kind wait: how long.")
    approval_timeout_seconds: float | None = Field(
        default=None, gt=0, description="Kind approval: how long to wait for a signal."
    )
    description: Description = ""


class WorkflowSpec(BaseModel):
    """A workflow definition as written by a tenant or shipped built in."""

    model_config = ConfigDict(extra="forbid")

    name: DefinitionName
    description: Description = ""
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict, max_length=_INPUTS_HARD_MAX)
    max_parallel_steps: int | None = Field(default=None, ge=1)
    steps: list[StepSpec] = Field(min_length=1, max_length=_STEPS_HARD_MAX)


class DefinitionProblems(ValueError):
    """Every reason a definition was refused, each naming the field at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def iter_refs(value: Any, depth: int = 0) -> Iterator[tuple[str, int]]:
    """Every ``$ref`` pointer in a mapping, with the depth it sits at."""
    if isinstance(value, dict):
        if set(value) == {REF}:
            yield str(value[REF]), depth
            return
        for item in value.values():
            yield from iter_refs(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from iter_refs(item, depth + 1)


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    return 0


def topological_order(spec: WorkflowSpec) -> list[str]:
    """Step ids, dependencies first; ties in the order the definition lists them.

    Deterministic on purpose: a run's DBOS step ids are drawn in this order, and a
    recovered run must draw them the same way.
    """
    position = {step.id: index for index, step in enumerate(spec.steps)}
    sorter = graphlib.TopologicalSorter({step.id: step.depends_on for step in spec.steps})
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return order


def _ancestors(spec: WorkflowSpec) -> dict[str, set[str]]:
    direct = {step.id: set(step.depends_on) for step in spec.steps}
    result: dict[str, set[str]] = {}
    for step_id in topological_order(spec):
        found = set(direct[step_id])
        for parent in direct[step_id]:
            found |= result[parent]
        result[step_id] = found
    return result


def _check_ref(pointer: str, step_id: str, spec: WorkflowSpec, ancestors: set[str]) -> str | None:
    where = f"steps.{step_id}.input"
    try:
        parts = jsonpointer.JsonPointer(pointer).parts
    except jsonpointer.JsonPointerException:
        return f"{where}: {pointer!r} is not a JSON pointer"
    if len(parts) >= 2 and parts[0] == "input":  # noqa: PLR2004 - /input/<name>
        if parts[1] not in spec.inputs:
            return f"{where}: {pointer!r} names an input the definition does not declare"
        return None
    if len(parts) >= 3 and parts[0] == "steps" and parts[2] == "output":  # noqa: PLR2004
        if parts[1] not in ancestors:
            return f"{where}: {pointer!r} reads step {parts[1]!r}, which is not one it depends on"
        return None
    return f"{where}: {pointer!r} must start with /input/<name> or /steps/<id>/output"


def _check_step(
    step: StepSpec,
    spec: WorkflowSpec,
    ancestors: set[str],
    catalogue: Catalogue,
    settings: RuntimeSettings,
) -> list[str]:
    where = f"steps.{step.id}"
    problems: list[str] = []
    if step.kind == "operation":
        operation = catalogue.get(step.operation or "")
        if operation is None:
            problems.append(f"{where}.operation: {step.operation!r} is not in the catalogue")
        else:
            # A whole-input {"$ref"} is checked when the run builds the call.
            whole = set(step.input) == {REF}
            missing = {name for name in operation.required_inputs if name not in step.input}
            if missing and not whole:
                problems.append(f"{where}.input: missing {sorted(missing)} ({operation.name})")
    elif step.operation is not None or step.input:
        problems.append(f"{where}: a {step.kind} step takes no operation or input")
    if step.kind == "wait" and step.wait_seconds is None:
        problems.append(f"{where}.wait_seconds: required for a wait step")
    if step.wait_seconds is not None and step.wait_seconds > settings.wait_seconds_max:
        problems.append(f"{where}.wait_seconds: at most {settings.wait_seconds_max}")
    if step.kind != "wait" and step.wait_seconds is not None:
        problems.append(f"{where}.wait_seconds: only for a wait step")
    if step.kind != "approval" and step.approval_timeout_seconds is not None:
        problems.append(f"{where}.approval_timeout_seconds: only for an approval step")
    if (step.approval_timeout_seconds or 0) > settings.approval_timeout_seconds_max:
        problems.append(
            f"{where}.approval_timeout_seconds: at most {settings.approval_timeout_seconds_max}"
        )
    if (step.timeout_seconds or 0) > settings.step_timeout_seconds_max:
        problems.append(f"{where}.timeout_seconds: at most {settings.step_timeout_seconds_max}")
    if (step.max_attempts or 0) > settings.step_attempts_max:
        problems.append(f"{where}.max_attempts: at most {settings.step_attempts_max}")
    if _depth(step.input) > settings.mapping_depth_max:
        problems.append(f"{where}.input: nested deeper than {settings.mapping_depth_max}")
    for pointer, _ in iter_refs(step.input):
        problem = _check_ref(pointer, step.id, spec, ancestors)
        if problem is not None:
            problems.append(problem)
    return problems


def check_definition(
    spec: WorkflowSpec, *, catalogue: Catalogue, settings: RuntimeSettings
) -> None:
    """Refuse a definition that could not run as written.

    Checks: bounded size and step count, unique ids, known dependencies, no cycle,
    known operations, mappings that point at declared inputs or at outputs of
    steps it depends on, and timeouts and attempts within the settings.

    Raises:
        DefinitionProblems: with every problem found, not just the first.
    """
    problems: list[str] = []
    size = len(json.dumps(spec.model_dump(mode="json"), separators=(",", ":")))
    if size > settings.definition_max_bytes:
        problems.append(f"definition: {size} bytes, at most {settings.definition_max_bytes}")
    if len(spec.steps) > settings.steps_max:
        problems.append(f"steps: {len(spec.steps)} steps, at most {settings.steps_max}")
    limit = settings.max_parallel_steps_limit
    if spec.max_parallel_steps is not None and spec.max_parallel_steps > limit:
        problems.append(f"max_parallel_steps: at most {limit}")
    ids = [step.id for step in spec.steps]
    duplicates = sorted({step_id for step_id in ids if ids.count(step_id) > 1})
    if duplicates:
        problems.append(f"steps: duplicate ids {duplicates}")
    known = set(ids)
    for step in spec.steps:
        unknown = sorted(set(step.depends_on) - known)
        if unknown:
            problems.append(f"steps.{step.id}.depends_on: unknown steps {unknown}")
        if step.id in step.depends_on:
            problems.append(f"steps.{step.id}.depends_on: a step cannot depend on itself")
    if problems:
        raise DefinitionProblems(problems)
    try:
        ancestors = _ancestors(spec)
    except graphlib.CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise DefinitionProblems([f"steps: dependency cycle {cycle}"]) from None
    for step in spec.steps:
        problems.extend(_check_step(step, spec, ancestors[step.id], catalogue, settings))
    if problems:
        raise DefinitionProblems(problems)
