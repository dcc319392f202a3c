"""Request and response schemas of the campaign API.

Hard caps here stop oversized input before any work; the configurable bounds
(``MarketingSettings``, at or below these caps) are checked by the service,
which names the field and the limit in its 422 answer.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from xynergy.marketing_engine.templates.schemas import KEY_HARD_MAX, KeyText
from xynergy.platform.schema_bounds import decimal_schema, setting_bounds
from xynergy.platform.text import PlainText, RawText

__all__ = [
    "Campaign",
    "CampaignDetail",
    "CampaignFilters",
    "CampaignGenerate",
    "CampaignStatus",
    "CampaignStep",
]

CampaignStatus = Literal["draft", "approved", "active", "completed", "archived"]

# The column sizes and MarketingSettings' own upper limits.
NAME_HARD_MAX = 1000
GOALS_HARD_MAX = 100
GOAL_HARD_MAX = 2000
CHANNELS_HARD_MAX = 50
AUDIENCE_HARD_MAX = 10_000
ID_LENGTH = 32
_BUDGET_DIGITS = 18
_BUDGET_DECIMALS = 2

# Stored and shown: display text. A channel is a name the service checks against
# the configured list.
# The configured bounds are published too (``setting_bounds``), so the schema says
# what this deployment accepts.
Name = Annotated[str, PlainText(max_length=NAME_HARD_MAX, min_length=1)]
Goal = Annotated[
    str,
    PlainText(max_length=GOAL_HARD_MAX, min_length=1),
    Field(json_schema_extra=setting_bounds(maxLength="marketing.goal_max_chars")),
]
Channel = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_lower=True),
    RawText(max_length=KEY_HARD_MAX, min_length=1),
    Field(json_schema_extra=setting_bounds(enum="marketing.channels")),
]
Audience = Annotated[
    str,
    PlainText(max_length=AUDIENCE_HARD_MAX, min_length=1, multiline=True),
    Field(json_schema_extra=setting_bounds(maxLength="marketing.audience_max_chars")),
]
Tone = Annotated[
    str,
    PlainText(max_length=KEY_HARD_MAX, min_length=1),
    Field(json_schema_extra=setting_bounds(maxLength="marketing.text_field_max_chars")),
]
_BUDGET_SCHEMA = {
    **decimal_schema(
        integer_digits=_BUDGET_DIGITS - _BUDGET_DECIMALS, decimal_places=_BUDGET_DECIMALS
    ),
    **setting_bounds(maximum="marketing.budget_max"),
}


class CampaignGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    business_type: KeyText
    industry: KeyText = "generic"
    goals: list[Goal] = Field(
        min_length=1,
        max_length=GOALS_HARD_MAX,
        json_schema_extra=setting_bounds(maxItems="marketing.goals_max"),
    )
    channels: list[Channel] = Field(
        min_length=1,
        max_length=CHANNELS_HARD_MAX,
        json_schema_extra=setting_bounds(maxItems="marketing.channels_max"),
    )
    audience: Audience
    tone: Tone = "friendly"
    starts_on: date
    ends_on: date
    budget: Annotated[
        Decimal,
        Field(
            ge=0, max_digits=_BUDGET_DIGITS, decimal_places=_BUDGET_DECIMALS, allow_inf_nan=False
        ),
        WithJsonSchema(_BUDGET_SCHEMA),
    ]


class CampaignStep(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str = Field(max_length=64)
    output: dict[str, Any]
    reused: bool = Field(description="True when a cached output was used instead of new work.")


class Campaign(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(max_length=ID_LENGTH)
    status: CampaignStatus
    name: str = Field(max_length=NAME_HARD_MAX)
    business_type: str = Field(max_length=KEY_HARD_MAX)
    industry: str = Field(max_length=KEY_HARD_MAX)
    goals: list[str] = Field(max_length=GOALS_HARD_MAX)
    channels: list[str] = Field(max_length=CHANNELS_HARD_MAX)
    audience: str = Field(max_length=AUDIENCE_HARD_MAX)
    tone: str = Field(max_length=KEY_HARD_MAX)
    starts_on: date
    ends_on: date
    budget: Decimal
    estimated_reach: int
    plan: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class CampaignDetail(Campaign):
    """A campaign with the output of each step of its generation."""

    steps: list[CampaignStep]


class CampaignFilters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    status: CampaignStatus | None = None
    business_type: str | None = Field(default=None, max_length=KEY_HARD_MAX)
    created_after: datetime | None = None
    created_before: datetime | None = None
