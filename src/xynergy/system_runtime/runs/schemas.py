"""Request and response bodies of the runs API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.json_value import JsonObject
from xynergy.platform.text import PlainText
from xynergy.system_runtime.definitions.spec import DefinitionName, StepId

__all__ = [
    "RunDetail",
    "RunFilters",
    "RunStart",
    "RunStatus",
    "RunSummary",
    "Signal",
    "StepView",
]

RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled"]
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
