"""Response schemas of performance analytics."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "AiSection",
    "CampaignsSection",
    "ContentSection",
    "KeywordMover",
    "KeywordsSection",
    "PerformanceReport",
    "SourceName",
    "SourceState",
]

SourceName = Literal["content", "keywords", "campaigns", "ai"]
SourceState = Literal["ok", "unavailable", "forbidden", "rejected"]


class ContentSection(BaseModel):
    by_status: dict[str, int] = Field(
        description="Content pieces changed in the window, per status (every status listed)."
    )


class KeywordMover(BaseModel):
    keyword_id: str
    phrase: str
    engine: str
    locale: str
    start_position: int | None
    latest_position: int | None
    change: int = Field(description="Positive: improved; negative: declined.")


class KeywordsSection(BaseModel):
    window_days: int = Field(description="The ASO Engine's trending window used.")
    improved: int = Field(description="Keywords that moved up (at most the ASO Engine's cap).")
    declined: int = Field(description="Keywords that moved down (at most the ASO Engine's cap).")
    top_movers: list[KeywordMover] = Field(description="Largest moves either way, largest first.")


class CampaignsSection(BaseModel):
    by_status: dict[str, int] = Field(
        description="Campaigns changed in the window, per status (every life-cycle status listed)."
    )


class AiSection(BaseModel):
    requests: int
    cache_hits: int
    cache_hit_rate: float | None = Field(
        description="cache_hits / requests; null without requests."
    )
    tokens: int = Field(description="Input plus output tokens.")
    cost_usd: str = Field(description="US dollars, exact decimal string.", examples=["0.012500000"])


class PerformanceReport(BaseModel):
    """The tenant's performance over a window; a section is null when its source failed."""

    window_days: int
    since: date = Field(description="First UTC day of the window.")
    until: date = Field(description="Last UTC day of the window (today).")
    generated_at: datetime = Field(description="When this answer was computed (it may be cached).")
    sources: dict[SourceName, SourceState] = Field(
        description=(
            "Per source: ok; unavailable (down, timed out or breaker open: retry later); "
            "forbidden (the key lacks the source's scope); rejected (the source refused "
            "this query, e.g. a window it does not support)."
        )
    )
    failures: dict[SourceName, str] = Field(
        default_factory=dict, description="Why each source that is not ok failed."
    )
    content: ContentSection | None
    keywords: KeywordsSection | None
    campaigns: CampaignsSection | None
    ai: AiSection | None
    partial: bool = Field(description="True when any section is missing.")
