"""Request and response schemas of keyword research.

The hard caps here are the upper limits of ``MarketingSettings``: they bound
what is parsed at all. The configured, tighter bounds are checked by
:func:`xynergy.marketing_engine.research.service.check_bounds` with a message
naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from xynergy.platform.schema_bounds import setting_bounds
from xynergy.platform.text import RawText

__all__ = [
    "AiStatus",
    "Intent",
    "ResearchRequest",
    "ResearchResponse",
    "ResearchSources",
    "Source",
    "Suggestion",
    "TrackingRejection",
    "TrackingReport",
]

Intent = Literal["informational", "commercial", "transactional", "navigational"]
Source = Literal["owned", "trending", "seed", "ai"]
AiStatus = Literal["used", "unavailable", "refused"]

# The ``le`` bounds of the matching MarketingSettings fields.
SEEDS_HARD_MAX = 100
TEXT_HARD_MAX_CHARS = 1000
DESCRIPTION_HARD_MAX_CHARS = 100_000
RESULTS_HARD_MAX = 10_000
LOCALE_MAX_CHARS = 16
_LOCALE = r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}$"

# Seeds are search terms the service normalises; the description only feeds the
# research (and the AI prompt). Neither is stored as display text.
Text = Annotated[str, RawText(max_length=TEXT_HARD_MAX_CHARS)]
# A phrase is refused when nothing is left of it once normalised: it needs a
# letter or a digit. The configured bounds are published too (``setting_bounds``).
_PHRASE_PATTERN = r"^[^\x00]*[A-Za-z0-9][^\x00]*$"
Phrase = Annotated[
    str,
    RawText(max_length=TEXT_HARD_MAX_CHARS),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": TEXT_HARD_MAX_CHARS,
            "pattern": _PHRASE_PATTERN,
            **setting_bounds(maxLength="marketing.research_seed_max_chars"),
        }
    ),
]
_RESULTS_MAX = setting_bounds(maximum="marketing.research_results_max")


class ResearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seeds: list[Phrase] = Field(
        min_length=1,
        max_length=SEEDS_HARD_MAX,
        description="Seed topics, e.g. 'yoga mats'.",
        json_schema_extra=setting_bounds(maxItems="marketing.research_seeds_max"),
    )
    description: Annotated[str, RawText(max_length=DESCRIPTION_HARD_MAX_CHARS)] = Field(
        default="",
        description="What the business does.",
        json_schema_extra=setting_bounds(maxLength="marketing.research_description_max_chars"),
    )
    locale: str = Field(default="en-US", min_length=2, max_length=LOCALE_MAX_CHARS, pattern=_LOCALE)
    limit: int | None = Field(
        default=None,
        ge=1,
        le=RESULTS_HARD_MAX,
        description="Suggestions to return.",
        json_schema_extra=_RESULTS_MAX,
    )
    add_to_tracked: (
        Annotated[
            list[Phrase],
            Field(
                max_length=RESULTS_HARD_MAX,
                json_schema_extra=setting_bounds(maxItems="marketing.research_results_max"),
            ),
        ]
        | bool
    ) = Field(
        default=False,
        description="true: track every new suggestion; a list: track these phrases.",
    )


class Suggestion(BaseModel):
    phrase: str = Field(description="Normalised: NFKC, lowercase, single spaces.")
    cluster: str = Field(description="Label of its lexical cluster (the cluster's head phrase).")
    intent: Intent
    intent_method: str
    difficulty: int = Field(ge=0, le=100)
    difficulty_method: str
    demand: int = Field(ge=0, le=100, description="Relative demand index, not a search volume.")
    demand_method: str
    source: Source = Field(description="The strongest origin: trending > owned > seed > ai.")
    origins: list[Source]
    tracked: bool = Field(description="Already a tracked keyword of the tenant.")
    position: int | None = Field(
        default=None, description="Latest ranking position, when the ranking history has one."
    )


class ResearchSources(BaseModel):
    """What the suggestions were built from."""

    tracked_keywords: int = Field(description="Tracked keywords read from the ASO Engine.")
    tracked_keywords_truncated: bool
    trending_keywords: int
    content_pieces: int | None = Field(description="null: the key lacks content:read.")
    ai: AiStatus = Field(
        description="unavailable/refused: answered from owned data and heuristics only."
    )
    ai_provider: str | None = None
    ai_detail: str | None = None


class TrackingRejection(BaseModel):
    phrase: str
    reason: str


class TrackingReport(BaseModel):
    added: list[str]
    already_tracked: list[str]
    rejected: list[TrackingRejection]


class ResearchResponse(BaseModel):
    seeds: list[str]
    locale: str
    items: list[Suggestion]
    clustering_method: str
    sources: ResearchSources
    cached: bool = Field(description="Served from the 24-hour research cache.")
    tracking: TrackingReport | None = None
