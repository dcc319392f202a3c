"""Response bodies of the definitions API (a request body is a WorkflowSpec)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from xynergy.system_runtime.definitions.spec import WorkflowSpec

__all__ = [
    "DefinitionDetail",
    "DefinitionSource",
    "DefinitionSummary",
    "OperationList",
    "OperationView",
]

DefinitionSource = Literal["tenant", "built_in"]


class DefinitionSummary(BaseModel):
    name: str
    version: int
    built_in: bool = Field(description="Shipped with the runtime (version 1), not the tenant's.")
    description: str
    steps: int = Field(description="How many steps the definition has.")
    created_at: datetime | None = Field(description="When this version was stored; null: built in.")


class DefinitionDetail(DefinitionSummary):
    spec: WorkflowSpec
    required_scopes: list[str] = Field(
        description="Every scope a key needs to start a run of this definition."
    )


class OperationView(BaseModel):
    """One catalogue operation a step may name."""

    name: str
    service: str
    method: str
    path: str = Field(description="The endpoint called, relative to the service.")
    scopes: list[str] = Field(description="Scopes a run's key needs for this operation.")
    required_inputs: list[str] = Field(description="Input keys every step must map.")
    body: Literal["json", "ndjson"] = Field(
        description="ndjson: input.rows (objects) is sent as JSON lines, the rest as the query."
    )
    description: str


class OperationList(BaseModel):
    items: list[OperationView]
