"""Keyset (cursor) pagination: stable pages, no OFFSET scans, a hard page-size cap.

A cursor is the ``(created_at, id)`` of the last row served, encoded opaquely.
It is not signed: it only positions a query that is always filtered by the
caller's tenant, so a forged cursor can reach nothing a caller could not list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from xynergy.platform.exceptions import BadRequest, ValidationFailed

__all__ = [
    "PageParams",
    "PageParamsDep",
    "decode_cursor",
    "encode_cursor",
    "keyset_page",
    "split_page",
]

RowT = TypeVar("RowT")

_CURSOR_MAX_LENGTH = 200


@dataclass(frozen=True, slots=True)
class PageParams:
    """A validated page request: a size within the cap and an optional position."""

    limit: int
    after: tuple[datetime, str] | None


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """Opaque cursor for the row ``(created_at, row_id)``."""
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Inverse of :func:`encode_cursor`; raises BadRequest on anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(decoded, list) or len(decoded) != 2:
            raise ValueError("a cursor is a two-element list")
        created, row_id = decoded
        if not isinstance(row_id, str) or not isinstance(created, str):
            raise ValueError("cursor fields have the wrong types")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("cursor time has no time zone")
        # Normalising here turns an out-of-range forged offset into a 400, not a
        # database error, and makes every comparison an instant in UTC.
        return moment.astimezone(UTC), row_id
    except (ValueError, TypeError, OverflowError, binascii.Error) as exc:
        raise BadRequest("The cursor is not one this API issued.") from exc


def _page_params(
    request: Request,
    limit: Annotated[int | None, Query(ge=1, description="Page size.")] = None,
    cursor: Annotated[str | None, Query(max_length=_CURSOR_MAX_LENGTH)] = None,
) -> PageParams:
    settings = request.app.state.platform.settings
    size = settings.page_size_default if limit is None else limit
    if size > settings.page_size_max:
        raise ValidationFailed(f"limit must be at most {settings.page_size_max}.")
    return PageParams(limit=size, after=decode_cursor(cursor) if cursor else None)


PageParamsDep = Annotated[PageParams, Depends(_page_params)]


def keyset_page(
    query: Select[Any],
    *,
    created_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    params: PageParams,
) -> Select[Any]:
    """Newest-first page of ``query``: ordered, positioned after the cursor, limited.

    One extra row is fetched so the caller can tell whether a next page exists.
    """
    if params.after is not None:
        created, row_id = params.after
        # Bind with the columns' own types so the position is converted exactly
        # as stored values are (UTC), not as a plain DateTime.
        position = tuple_(literal(created, created_column.type), literal(row_id, id_column.type))
        query = query.where(tuple_(created_column, id_column) < position)
    return query.order_by(created_column.desc(), id_column.desc()).limit(params.limit + 1)


def split_page(
    rows: Sequence[RowT], params: PageParams, position: Any
) -> tuple[list[RowT], str | None]:
    """Split the fetched rows into the page and the cursor for the next one."""
    page = list(rows[: params.limit])
    if len(rows) <= params.limit or not page:
        return page, None
    created_at, row_id = position(page[-1])
    return page, encode_cursor(created_at, row_id)
