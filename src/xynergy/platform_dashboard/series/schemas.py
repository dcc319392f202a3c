"""Schemas of the metric series."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MetricSeries", "SeriesPoint"]


class SeriesPoint(BaseModel):
    """One time bucket: its start and the metric's value over it."""

    t: datetime = Field(description="Start of the bucket (UTC).")
    value: float | None = Field(
        description="The metric over the bucket; null where it is undefined (a rate or a "
        "percentile of no requests)."
    )


class MetricSeries(BaseModel):
    """A metric's values per step, summed over every replica's rollups."""

    model_config = ConfigDict(populate_by_name=True)

    metric: str
    unit: str = Field(description="requests, lookups, tokens, usd, ms or ratio.")
    from_: datetime = Field(alias="from", description="Start of the first bucket (UTC).")
    to: datetime = Field(description="End of the last bucket (UTC).")
    step: int = Field(description="Bucket width in seconds.")
    scope: Literal["platform", "tenant"] = Field(
        description="platform: every tenant's rows (or the platform's traffic); tenant: "
        "the rows of `tenant` only."
    )
    tenant: str | None = None
    service: str | None = None
    route: str | None = None
    namespace: str | None = None
    model: str | None = None
    points: list[SeriesPoint]
