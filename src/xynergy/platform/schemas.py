"""Schemas shared by every service: the error body and the cursor page."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorBody", "Page", "ResourceId"]

ItemT = TypeVar("ItemT")

# Every primary key is new_id(): 32 lowercase hex. Anything else is refused before
# a query is built.
ResourceId = Annotated[
    str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$", description="An id.")
]


class ErrorBody(BaseModel):
    """The one error shape every service answers with."""

    error: str = Field(description="Stable machine-readable code, e.g. 'not_found'.")
    detail: str = Field(description="Human-readable explanation, safe to show.")
    request_id: str | None = Field(description="Quote this when reporting a problem.")


class Page(BaseModel, Generic[ItemT]):
    """One page of a cursor-paginated list."""

    model_config = ConfigDict(frozen=True)

    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )
