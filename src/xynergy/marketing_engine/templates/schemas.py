"""Request and response schemas of the template API.

Hard caps here stop oversized input before any work; the configurable bounds
(``MarketingSettings``, at or below the column sizes) are checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from xynergy.platform.text import PlainText

__all__ = [
    "KEY_HARD_MAX",
    "KEY_PATTERN",
    "KeyText",
    "Phase",
    "Template",
    "TemplateBody",
    "TemplateCreate",
    "TemplateSource",
    "TemplateUpdate",
]

TemplateSource = Literal["builtin", "custom", "ai"]

# The column size of business_type and industry.
KEY_HARD_MAX = 100
KEY_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
_LINE_MAX = 500
_LINES_MAX = 20
_CHANNELS_MAX = 50
_PHASES_MAX = 12
_PERCENT = 100

KeyText = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, min_length=1, max_length=KEY_HARD_MAX,
        pattern=KEY_PATTERN,
    ),
]  # fmt: skip
# What a template says is shown to people: display text, like every stored field.
Line = Annotated[str, PlainText(max_length=_LINE_MAX, min_length=1)]
Lines = Annotated[list[Line], Field(max_length=_LINES_MAX)]
ChannelName = Annotated[str, PlainText(max_length=KEY_HARD_MAX, min_length=1)]


class Phase(BaseModel):
    """A stretch of the campaign: its name and its share of the days, in percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Line
    share_percent: int = Field(ge=1, le=_PERCENT)


class TemplateBody(BaseModel):
    """What a template says: positioning, per-channel tactics, UTM media, phases."""

    model_config = ConfigDict(extra="forbid")

    summary: Line
    key_messages: Lines = Field(min_length=1)
    default_tactics: Lines = Field(min_length=1)
    channel_tactics: dict[ChannelName, Lines] = Field(
        default_factory=dict, max_length=_CHANNELS_MAX
    )
    utm_medium: dict[ChannelName, ChannelName] = Field(
        default_factory=dict, max_length=_CHANNELS_MAX
    )
    phases: list[Phase] = Field(min_length=1, max_length=_PHASES_MAX)

    @model_validator(mode="after")
    def _phases_fill_the_campaign(self) -> TemplateBody:
        total = sum(phase.share_percent for phase in self.phases)
        if total != _PERCENT:
            raise ValueError(f"phases: share_percent must add up to 100, not {total}")
        return self


class TemplateCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    business_type: KeyText
    industry: KeyText = "generic"
    body: TemplateBody


class TemplateUpdate(BaseModel):
    """A new version of the template at the path's business type and industry."""

    model_config = ConfigDict(extra="forbid")

    body: TemplateBody


class Template(BaseModel):
    """A template as resolved or listed; built-in ones have no id and no creation time."""

    id: str | None = Field(max_length=KEY_HARD_MAX * 2)
    business_type: str = Field(max_length=KEY_HARD_MAX)
    industry: str = Field(max_length=KEY_HARD_MAX)
    version: int
    source: TemplateSource
    body: dict[str, Any]
    created_at: datetime | None
