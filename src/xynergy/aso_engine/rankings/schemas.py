"""Request and response schemas of rankings and trending keywords."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

from xynergy.platform.text import RawText

__all__ = [
    "NOT_RANKED_POSITION",
    "POSITION_MAX",
    "Direction",
    "EngineFilter",
    "LocaleFilter",
    "Observation",
    "ObservationBatch",
    "Ranking",
    "RecordedRankings",
    "TrendingKeyword",
    "TrendingKeywords",
]

POSITION_MAX = 1000
# Not ranked compares as just past the worst position, so entering or dropping
# out of the results counts as a movement.
NOT_RANKED_POSITION = POSITION_MAX + 1
# Hard caps; the configured bounds (AsoSettings) are checked by the service.
BATCH_HARD_MAX = 100_000
URL_HARD_MAX_CHARS = 8192
ENGINE_MAX_CHARS = 32
LOCALE_MAX_CHARS = 16
_KEYWORD_ID = r"^[0-9a-f]{32}$"
_ENGINE = r"^[a-z][a-z0-9_-]*$"
_LOCALE = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$"
# The latest calendar date anywhere on Earth: an observation dated "today" by a
# client east of UTC is not in the future.
_EARLIEST_ZONE = timezone(timedelta(hours=14))
_HTTP_URL: TypeAdapter[AnyHttpUrl] = TypeAdapter(AnyHttpUrl)


def _http_url(value: str) -> str:
    # Validated as a URL but stored as sent (pydantic would normalise it).
    _HTTP_URL.validate_python(value)
    return value


HttpUrlText = Annotated[
    str,
    StringConstraints(pattern=r"^https?://"),
    RawText(max_length=URL_HARD_MAX_CHARS, min_length=8),
    AfterValidator(_http_url),
]
Direction = Literal["improved", "worsened"]
# Filters are only length-bounded: anything else is a plain value that matches nothing.
EngineFilter = Annotated[str, Field(min_length=1, max_length=ENGINE_MAX_CHARS)]
LocaleFilter = Annotated[str, Field(min_length=1, max_length=LOCALE_MAX_CHARS)]


def _not_in_future(value: date) -> date:
    if value > datetime.now(_EARLIEST_ZONE).date():
        raise ValueError("observed_on is in the future")
    return value


class Observation(BaseModel):
    """One keyword's position on one engine and locale on one day."""

    model_config = ConfigDict(extra="forbid")

    keyword_id: str = Field(pattern=_KEYWORD_ID, min_length=32, max_length=32)
    engine: str = Field(min_length=1, max_length=ENGINE_MAX_CHARS, pattern=_ENGINE)
    locale: str = Field(min_length=2, max_length=LOCALE_MAX_CHARS, pattern=_LOCALE)
    position: int | None = Field(
        ge=1, le=POSITION_MAX, description="1 is the top result; null means not ranked."
    )
    url: HttpUrlText | None = None
    observed_on: Annotated[date, AfterValidator(_not_in_future)]


class ObservationBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1, max_length=BATCH_HARD_MAX)


class RecordedRankings(BaseModel):
    recorded: int = Field(description="Observations written (same key twice counts once).")


class Ranking(BaseModel):
    """A recorded observation, as read back."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    keyword_id: str
    engine: str
    locale: str
    position: int | None
    url: str | None
    observed_on: date
    created_at: datetime


class TrendingKeyword(BaseModel):
    keyword_id: str
    phrase: str
    locale: str
    engine: str
    start_position: int | None = Field(
        description="At the window's first observation; null: not ranked."
    )
    latest_position: int | None = Field(description="At the latest observation; null: not ranked.")
    change: int = Field(
        description=f"start - latest (positive: improved); not ranked counts as {NOT_RANKED_POSITION}."
    )


class TrendingKeywords(BaseModel):
    window: int = Field(description="Days back from today (UTC) the window starts.")
    direction: Direction
    items: list[TrendingKeyword]
