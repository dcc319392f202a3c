"""Request and response bodies of service triggers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.json_value import JsonObject

__all__ = ["TriggerRequest", "TriggerResult"]


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: str = Field(
        max_length=96,
        pattern=r"^[a-z][a-z0-9_]{0,31}\.[a-z][a-z0-9_]{0,63}$",
        description="A catalogue operation of this service.",
        examples=["intake.stats"],
    )
    input: JsonObject = Field(
        default_factory=dict,
        description="Path parameters (identifiers) by name; the rest is the query (reads) "
        "or the JSON body (writes).",
    )


class TriggerResult(BaseModel):
    operation: str
    service: str
    output: Any = Field(description="The operation's JSON answer.")
