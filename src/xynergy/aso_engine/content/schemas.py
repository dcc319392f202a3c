"""Request and response schemas of the content API.

Hard caps here stop oversized input before any work; the configurable bounds
(``AsoSettings``, always at or below these caps) are checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from xynergy.platform.text import MAX_ESCAPE_EXPANSION, PlainText, RawText, RichText

__all__ = [
    "Content",
    "ContentCount",
    "ContentCreate",
    "ContentFilters",
    "ContentSort",
    "ContentStatus",
    "ContentUpdate",
    "Priority",
]

ContentStatus = Literal["draft", "review", "scheduled", "published", "archived"]
Priority = Literal["low", "normal", "high", "urgent"]
ContentSort = Literal["created", "priority"]

# The column sizes (and AsoSettings' upper limits): no setting can go past them.
TITLE_HARD_MAX = 1000
BODY_HARD_MAX = 10_000_000
KEYWORDS_HARD_MAX = 1000
PHRASE_HARD_MAX = 1000
AUTHOR_MAX = 200
ID_LENGTH = 32
# Output bounds: sanitising may escape every character of the body (the column is
# TEXT), and NFKC turns one character into at most 18 (U+FDFA).
_ESCAPED_BODY_MAX = BODY_HARD_MAX * MAX_ESCAPE_EXPANSION
_NFKC_MAX_EXPANSION = 18

# Title and author are display text (no markup, escaped); the body keeps the
# allowlisted markup. Keywords are terms the service normalises (NFKC, lower case).
Title = Annotated[str, PlainText(max_length=TITLE_HARD_MAX, min_length=1)]
Body = Annotated[str, RichText(max_length=BODY_HARD_MAX, stored_max_length=_ESCAPED_BODY_MAX)]
Phrase = Annotated[str, RawText(max_length=PHRASE_HARD_MAX)]
Author = Annotated[str, PlainText(max_length=AUTHOR_MAX, min_length=1)]
Keywords = Annotated[list[Phrase], Field(max_length=KEYWORDS_HARD_MAX)]


class ContentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    body: Body = ""
    status: ContentStatus = "draft"
    priority: Priority = "normal"
    target_keywords: Keywords = Field(default_factory=list)
    author: Author


class ContentUpdate(BaseModel):
    """A partial update: only the fields sent change; none may be null."""

    # Declared as the validator below enforces: at least one field, no nulls.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    title: Title | SkipJsonSchema[None] = None
    body: Body | SkipJsonSchema[None] = None
    status: ContentStatus | SkipJsonSchema[None] = None
    priority: Priority | SkipJsonSchema[None] = None
    target_keywords: Keywords | SkipJsonSchema[None] = None
    author: Author | SkipJsonSchema[None] = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls_and_not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise ValueError("send at least one field to change")
            nulls = sorted(str(name) for name, value in data.items() if value is None)
            if nulls:
                raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return data


class Content(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(max_length=ID_LENGTH)
    title: str = Field(max_length=TITLE_HARD_MAX)
    body: str = Field(max_length=_ESCAPED_BODY_MAX)
    status: ContentStatus
    priority: Priority
    target_keywords: Keywords
    author: str = Field(max_length=AUTHOR_MAX)
    created_at: datetime
    updated_at: datetime


class ContentCount(BaseModel):
    count: int


class ContentFilters(BaseModel):
    """Normalised list filters; also the cache key of a list or count."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    status: ContentStatus | None = None
    priority: Priority | None = None
    # The query parameter is capped; NFKC may lengthen it (it then matches nothing).
    keyword: str | None = Field(default=None, max_length=PHRASE_HARD_MAX * _NFKC_MAX_EXPANSION)
    updated_since: datetime | None = None
