"""What a run executes: its identity, input and definition, from its start or its row.

A run's first workflow gets these as DBOS arguments (``start_arguments``), recorded
by DBOS with the workflow, so it begins without reading its row: on PostgreSQL that
read was a pool checkout and several round trips per run before its first step. The
start enqueues only after the row committed (runs/service.py), so a run that has
its arguments also has its rows. The definition itself is not an argument (up to
``definition_max_bytes`` pickled into every run's DBOS record): the process that
started the run holds it parsed and checked (``CheckedSpecs``); any other process,
a resume's fork, and a run queued the old way (run id only) read the row instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from xynergy.system_runtime.definitions.lookup import CheckedSpecs
from xynergy.system_runtime.definitions.spec import WorkflowSpec
from xynergy.system_runtime.engine.calls import Identity
from xynergy.system_runtime.models import RunRecord

__all__ = ["RunPlan", "plan_from_record", "plan_from_start", "start_arguments"]

# The format of start_arguments; a plan is built only from a format this code knows.
_FORMAT = 1


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The part of a run's row its execution needs."""

    run_id: str
    identity: Identity
    input: dict[str, Any]
    spec: WorkflowSpec


def start_arguments(run: RunRecord) -> dict[str, Any]:
    """The run's plan, minus the definition, as plain JSON values.

    DBOS pickles its arguments: the request's str subclasses (the platform's
    sanitised text) must not cross, so the values go through JSON first.
    """
    plain: dict[str, Any] = json.loads(
        json.dumps(
            {
                "format": _FORMAT,
                "tenant_id": run.tenant_id,
                "key_id": run.key_id,
                "key_tenant_id": run.key_tenant_id,
                "scopes": list(run.scopes),
                "input": run.input,
                "definition": run.definition_name,
                "version": run.definition_version,
                "built_in": run.built_in,
            },
            separators=(",", ":"),
        )
    )
    return plain


def plan_from_start(run_id: str, start: dict[str, Any], specs: CheckedSpecs) -> RunPlan | None:
    """The plan from a first workflow's arguments; None when the definition is not
    at hand in this process (or the arguments' format is unknown): read the row."""
    if start.get("format") != _FORMAT:
        return None
    owner = "" if start["built_in"] else start["tenant_id"]
    spec = specs.get(owner, start["definition"], start["version"])
    if spec is None:
        return None
    identity = Identity(
        tenant_id=start["tenant_id"],
        key_id=start["key_id"],
        key_tenant_id=start["key_tenant_id"],
        scopes=frozenset(start["scopes"]),
    )
    return RunPlan(run_id=run_id, identity=identity, input=start["input"], spec=spec)


def plan_from_record(run: RunRecord) -> RunPlan:
    identity = Identity(
        tenant_id=run.tenant_id,
        key_id=run.key_id,
        key_tenant_id=run.key_tenant_id,
        scopes=frozenset(run.scopes),
    )
    return RunPlan(
        run_id=run.id,
        identity=identity,
        input=run.input,
        spec=WorkflowSpec.model_validate(run.spec),
    )
