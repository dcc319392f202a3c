"""Request and response schemas of the keywords API.

The hard ``max_length`` caps here are the column widths: they bound what is
parsed at all. The tighter, configurable bounds (``AsoSettings``) and the
normalisation are applied by :mod:`xynergy.aso_engine.keywords.rules`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xynergy.aso_engine.keywords.rules import LOCALE_MAX_CHARS, TAG_MAX_CHARS
from xynergy.platform.text import RawText

__all__ = [
    "ImportMode",
    "ImportRejectedBody",
    "ImportRejection",
    "ImportReport",
    "Intent",
    "Keyword",
    "KeywordCreate",
    "KeywordFilters",
]

Intent = Literal["informational", "navigational", "commercial", "transactional"]
ImportMode = Literal["all_or_nothing", "best_effort"]

PHRASE_MAX_CHARS = 1000
URL_MAX_CHARS = 8192
TAGS_MAX = 200
# Terms and a URL, not display text: the rules (shared with the bulk import)
# canonicalise them, so the API and an import store the same keyword.
Tag = Annotated[str, RawText(max_length=TAG_MAX_CHARS)]


class KeywordCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: Annotated[str, RawText(max_length=PHRASE_MAX_CHARS, min_length=1)]
    locale: Annotated[str, RawText(max_length=LOCALE_MAX_CHARS, min_length=2)] = Field(
        examples=["en-US"]
    )
    tags: list[Tag] = Field(default_factory=list, max_length=TAGS_MAX)
    target_url: Annotated[str, RawText(max_length=URL_MAX_CHARS)] | None = None
    intent: Intent | None = None


class Keyword(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    phrase: str
    locale: str
    tags: list[str]
    target_url: str | None
    intent: str | None
    created_at: datetime
    updated_at: datetime


class KeywordFilters(BaseModel):
    """List filters, already normalised; None means "any"."""

    model_config = ConfigDict(frozen=True)

    locale: str | None = None
    tag: str | None = None
    intent: Intent | None = None
    phrase_prefix: str | None = None


class ImportRejection(BaseModel):
    line: int = Field(description="1-based line of the file where the row starts.")
    reason: str


class ImportReport(BaseModel):
    """What a bulk import did with every row it received."""

    mode: ImportMode
    received: int = Field(description="Data rows read (blank lines are not rows).")
    inserted: int
    duplicates_in_file: int
    duplicates_existing: int
    rejected: int
    rejections: list[ImportRejection] = Field(description="The first rejected rows.")
    rejections_truncated: bool = Field(description="True when more rows were rejected.")


class ImportRejectedBody(ImportReport):
    """An all-or-nothing import refused: the error body and the report; nothing written."""

    error: str
    detail: str
    request_id: str | None
