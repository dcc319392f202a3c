"""Marketing Engine settings, prefix ``XYNERGY_MARKETING_`` (e.g. ``XYNERGY_MARKETING_GOALS_MAX``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_REACH_PER_1000_BUDGET", "MarketingSettings"]

# People reached per 1,000 units of budget spent on a channel: planning figures
# an operator replaces with their own (XYNERGY_MARKETING_REACH_PER_1000_BUDGET).
DEFAULT_REACH_PER_1000_BUDGET: dict[str, int] = {
    "email": 4_000,
    "social": 12_000,
    "search": 6_000,
    "display": 20_000,
    "content": 3_000,
    "video": 9_000,
}


class MarketingSettings(BaseSettings):
    """Bounds, TTLs and planning figures of the Marketing Engine."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_MARKETING_", extra="ignore", frozen=True)

    # --- keyword research -----------------------------------------------------------
    research_seeds_max: int = Field(
        default=10, ge=1, le=100, description="Most seed keywords in one research request."
    )
    research_seed_max_chars: int = Field(
        default=100, ge=1, le=1000, description="Longest seed keyword, in characters."
    )
    research_description_max_chars: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="Longest business description of a research request, in characters.",
    )
    research_results_default: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Keywords a research answer holds when the request names no limit.",
    )
    research_results_max: int = Field(
        default=200, ge=1, le=10_000, description="Largest limit a research request may ask for."
    )
    research_cache_ttl_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="How long a research answer is cached (namespace marketing-research).",
    )
    research_ai_max_tokens: int = Field(
        default=400,
        ge=1,
        le=8192,
        description="max_tokens of the AI call that suggests research keywords.",
    )
    research_trending_window_days: int = Field(
        default=30,
        ge=1,
        le=366,
        description="Trending window (days) research reads; one of XYNERGY_ASO_TRENDING_WINDOWS_DAYS.",
    )
    research_owned_keywords_max: int = Field(
        default=1_000, ge=0, le=100_000, description="Tracked keywords read from the ASO Engine."
    )

    # --- campaigns -------------------------------------------------------------------
    goals_max: int = Field(default=10, ge=1, le=100, description="Most goals in one campaign.")
    goal_max_chars: int = Field(
        default=200, ge=1, le=2000, description="Longest campaign goal, in characters."
    )
    channels_max: int = Field(default=6, ge=1, le=50, description="Most channels in one campaign.")
    audience_max_chars: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Longest campaign audience description, in characters.",
    )
    text_field_max_chars: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Longest short text field (tone, business type, industry), in characters.",
    )
    campaign_days_max: int = Field(
        default=366,
        ge=1,
        le=3660,
        description="Longest campaign, from starts_on to ends_on, in days.",
    )
    budget_max: float = Field(default=100_000_000, gt=0, description="Largest campaign budget.")
    campaign_ai_max_tokens: int = Field(
        default=600, ge=1, le=8192, description="max_tokens of each AI step of campaign generation."
    )
    step_cache_ttl_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="How long a campaign generation step's output is cached (namespace marketing-"
        "steps).",
    )
    reach_per_1000_budget: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_REACH_PER_1000_BUDGET),
        description="Channel -> people reached per 1,000 of budget: the channels a campaign may use"
        " and their planning figures; JSON object.",
    )

    # --- templates -------------------------------------------------------------------
    template_cache_ttl_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="How long campaign templates are cached (namespace marketing-templates); writes"
        " invalidate them.",
    )
    template_body_max_chars: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Largest campaign template body, in characters of JSON.",
    )
    template_warm_max: int = Field(
        default=500,
        ge=0,
        le=100_000,
        description="Most templates (tenant, business type, industry) computed ahead when the "
        "cache is warmed (at start-up and on the runtime's warming schedule): the most recently "
        "stored, then those of the most recent campaigns; 0: none.",
    )

    # --- analytics -------------------------------------------------------------------
    analytics_cache_ttl_seconds: float = Field(
        default=300, gt=0, description="How long a performance report is cached."
    )
    analytics_window_days_default: int = Field(
        default=30,
        ge=1,
        le=3660,
        description="Window of GET /analytics/performance when the request names none, in days.",
    )
    analytics_window_days_max: int = Field(
        default=366,
        ge=1,
        le=3660,
        description="Longest window of GET /analytics/performance, in days.",
    )
    analytics_top_movers: int = Field(
        default=5,
        ge=0,
        le=100,
        description="Keywords listed as top movers (up and down) in a performance report.",
    )
    analytics_trending_windows_days: tuple[int, ...] = Field(
        default=(7, 30),
        min_length=1,
        description="The ASO Engine's trending windows (XYNERGY_ASO_TRENDING_WINDOWS_DAYS); JSON list.",
    )

    @field_validator("reach_per_1000_budget", mode="before")
    @classmethod
    def _parse_reach(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels a campaign may use: those with a planning figure."""
        return tuple(self.reach_per_1000_budget)
