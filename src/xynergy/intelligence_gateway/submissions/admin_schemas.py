"""Schemas of the submissions admin API: listing, status changes, stats."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DayCount",
    "Stats",
    "SubmissionFilters",
    "SubmissionKind",
    "SubmissionOut",
    "SubmissionStatus",
    "SubmissionUpdate",
]

SubmissionKind = Literal["beta", "contact"]
SubmissionStatus = Literal["new", "reviewed", "accepted", "rejected", "spam"]

# The column sizes: query parameters and answers never go past them.
ID_LENGTH = 32
SOURCE_HARD_MAX = 2000
_LIST_MAX = 1000


class SubmissionFilters(BaseModel):
    """Normalised list and export filters; ``since`` inclusive, ``until`` exclusive (UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubmissionKind | None = None
    status: SubmissionStatus | None = None
    form_id: str | None = Field(default=None, max_length=ID_LENGTH)
    source: str | None = Field(default=None, max_length=SOURCE_HARD_MAX)
    since: datetime | None = None
    until: datetime | None = None


class SubmissionOut(BaseModel):
    """A stored submission, as sanitised when it was received."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(max_length=ID_LENGTH)
    form_id: str = Field(max_length=ID_LENGTH)
    kind: SubmissionKind
    status: SubmissionStatus
    email: str
    name: str
    company: str | None
    website: str | None
    subject: str | None
    body: str
    source: str | None
    utm: dict[str, str] = Field(max_length=_LIST_MAX)
    spam_reasons: list[str] = Field(max_length=_LIST_MAX)
    created_at: datetime
    updated_at: datetime


class SubmissionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: SubmissionStatus


class DayCount(BaseModel):
    day: date
    count: int


class Stats(BaseModel):
    """Counts of a tenant's submissions received in ``since``..``until`` (whole UTC days)."""

    since: date
    until: date
    total: int
    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_source: dict[str, int] = Field(
        description="The most frequent sources, most first; '' counts submissions without one."
    )
    by_day: list[DayCount] = Field(description="Days with submissions, oldest first.")
