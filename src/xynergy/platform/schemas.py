"""Schemas shared by every service: the error body and the cursor page."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ErrorBody", "Page"]

ItemT = TypeVar("ItemT")


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
