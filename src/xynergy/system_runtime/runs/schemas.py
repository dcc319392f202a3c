"""Request and response bodies of the runs API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.json_value import JsonObject
from xynergy.platform.text import PlainText
from xynergy.system_runtime.definitions.spec import DefinitionName, StepId

__all__ = [
    "RUN_STATUSES",
    "RunCounts",
    "RunDetail",
    "RunFilters",
    "RunStart",
    "RunStatus",
    "RunSummary",
    "Signal",
    "StepView",
]

RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
StepStatus = Literal["pending", "running", "waiting", "succeeded", "failed"]


class RunStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: DefinitionName = Field(description="A built-in or one of the tenant's names.")
    version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="A version of the tenant's definition; default: the latest."
    )
    input: JsonObject = Field(default_factory=dict, description="The run's named inputs.")


class Signal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step_id: StepId = Field(description="The approval step waiting for this signal.")
    decision: Literal["approve", "reject"]
    reason: Annotated[str, PlainText(max_length=1000)] | None = None


class RunFilters(BaseModel):
    status: RunStatus | None = None
    definition: DefinitionName | None = None
    started_after: datetime | None = None
    started_before: datetime | None = None


class RunSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    definition_name: str
    definition_version: int
    built_in: bool
    status: RunStatus
    resumes: int
    error_code: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StepView(BaseModel):
    id: str
    kind: str
    operation: str | None
    depends_on: list[str]
    status: StepStatus
    attempts: int
    error_code: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    output_summary: str | None = Field(description="The output's JSON, cut to a bounded length.")


class RunDetail(RunSummary):
    steps: list[StepView]


class RunCounts(BaseModel):
    """Exact counts of one tenant's runs per status (every status present, 0 if none)."""

    tenant_id: str
    definition: str | None = Field(description="Only this definition's runs, if asked.")
    since: datetime | None = Field(description="Only runs created at or after this, if asked.")
    total: int
    queued: int
    running: int
    waiting: int = Field(description="Runs paused at an approval step, waiting for a signal.")
    succeeded: int
    failed: int
    cancelled: int
