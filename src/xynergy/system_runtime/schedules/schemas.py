"""Request and response bodies of the schedules API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.json_value import JsonObject
from xynergy.system_runtime.definitions.spec import DefinitionName

__all__ = ["ScheduleCreate", "ScheduleStatus", "ScheduleUpdate", "ScheduleView"]

ScheduleStatus = Literal["active", "paused", "stopped"]
Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=120,
        # Cron's own alphabet (numbers, names, @macros, * / , - ? L W #); croniter
        # checks the rest.
        pattern=r"^[0-9A-Za-z@*/,?#\- ]+$",
        description="Five fields (minute hour day month weekday) or six with seconds first.",
        examples=["0 */6 * * *"],
    ),
]
TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}$",
        description="IANA time zone the cron is read in.",
        examples=["Europe/Paris"],
    ),
]


class ScheduleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: DefinitionName = Field(description="A built-in or one of the tenant's names.")
    version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Pin a version; default: the latest at each fire."
    )
    cron: Cron
    timezone: TimeZone = "UTC"
    input: JsonObject = Field(default_factory=dict, description="Each run's named inputs.")


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused"] | None = Field(
        default=None, description="Pause or resume the schedule."
    )
    cron: Cron | None = None
    timezone: TimeZone | None = None


class ScheduleView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    definition_name: str
    definition_version: int | None
    cron: str
    timezone: str
    input: dict[str, Any]
    status: ScheduleStatus
    stopped_reason: str | None
    fires: int
    last_fired_at: datetime | None
    last_run_id: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
