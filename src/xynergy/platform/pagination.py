"""Keyset (cursor) pagination: stable pages, no OFFSET scans, a hard page-size cap.

A cursor is the ``(created_at, id)`` of the last row served, encoded opaquely.
It is not signed: it only positions a query that is always filtered by the
caller's tenant, so a forged cursor can reach nothing a caller could not list.

Lists ordered by other keys (e.g. ``(priority_rank, created_at, id)``) use the
generic helpers: :class:`PageRequestDep` (size checked, cursor still raw),
:func:`keyset_page_by`, :func:`split_keyset_page` and the matching cursor codec.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Query, Request
from sqlalchemy import BigInteger, Integer, Select, SmallInteger, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from xynergy.platform.exceptions import BadRequest, ValidationFailed
from xynergy.platform.input_text import is_storable_text
from xynergy.platform.schema_bounds import setting_bounds

__all__ = [
    "KeysetValue",
    "PageLimit",
    "PageParams",
    "PageParamsDep",
    "PageRequest",
    "PageRequestDep",
    "decode_cursor",
    "decode_keyset_cursor",
    "encode_cursor",
    "encode_keyset_cursor",
    "created_page_rows",
    "keyset_page",
    "keyset_page_by",
    "page_size",
    "split_keyset_page",
    "split_page",
]

RowT = TypeVar("RowT")
# What a generic keyset cursor can hold: ints (ranks), strings (ids), aware times.
KeysetValue = int | str | datetime

_CURSOR_MAX_LENGTH = 200
_FORGED = "The cursor is not one this API issued."
# Signed integer widths of SQL integer columns: a position outside its column's
# range is refused before a driver fails to encode it.
_INT_BITS = ((BigInteger, 64), (SmallInteger, 16), (Integer, 32))
_WIDEST_INT_BITS = 64


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
        # fromisoformat stops at a NUL (C string rules) and would accept the rest.
        if not is_storable_text(row_id) or not is_storable_text(created):
            raise ValueError("a cursor field holds NUL or a lone surrogate")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("cursor time has no time zone")
        # Normalising here turns an out-of-range forged offset into a 400, not a
        # database error, and makes every comparison an instant in UTC.
        return moment.astimezone(UTC), row_id
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as exc:
        raise BadRequest(_FORGED) from exc


# The ``limit`` query parameter of every list: at least 1, at most this setting
# (published as the parameter's ``maximum``).
_CAP = "page_size_max"
PageLimit = Annotated[
    int | None,
    Query(ge=1, description="Page size.", json_schema_extra=setting_bounds(maximum=_CAP)),
]


def page_size(request: Request, limit: int | None) -> int:
    """The page size ``limit`` asks for (the default when None), within the cap.

    Raises:
        ValidationFailed: ``limit`` is above ``settings.page_size_max``.
    """
    settings = request.app.state.platform.settings
    size: int = settings.page_size_default if limit is None else limit
    if size > settings.page_size_max:
        raise ValidationFailed(f"limit must be at most {settings.page_size_max}.")
    return size


def _page_params(
    request: Request,
    limit: PageLimit = None,
    cursor: Annotated[str | None, Query(max_length=_CURSOR_MAX_LENGTH)] = None,
) -> PageParams:
    size = page_size(request, limit)
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


async def created_page_rows(
    session: AsyncSession, query: Select[Any], entity: Any, params: PageParams
) -> Sequence[Any]:
    """One newest-first page of ``query`` by ``entity``'s ``(created_at, id)``, with the
    extra row :func:`split_page` uses to tell whether a next page exists."""
    page = keyset_page(query, created_column=entity.created_at, id_column=entity.id, params=params)
    return (await session.scalars(page)).all()


def split_page(
    rows: Sequence[RowT], params: PageParams, position: Any
) -> tuple[list[RowT], str | None]:
    """Split the fetched rows into the page and the cursor for the next one."""
    page = list(rows[: params.limit])
    if len(rows) <= params.limit or not page:
        return page, None
    created_at, row_id = position(page[-1])
    return page, encode_cursor(created_at, row_id)


# --- generic multi-column keysets ---------------------------------------------


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A page size within the cap and a still-opaque cursor.

    For lists whose cursor shape depends on the requested order: the endpoint
    decodes the cursor once it knows which keyset the page is ordered by.
    """

    limit: int
    cursor: str | None

    def created_params(self) -> PageParams:
        """This request as a newest-first ``(created_at, id)`` page."""
        return PageParams(
            limit=self.limit, after=decode_cursor(self.cursor) if self.cursor else None
        )

    def after(self, kinds: Sequence[type[KeysetValue]]) -> tuple[KeysetValue, ...] | None:
        """The decoded position for a keyset of ``kinds``, or None on the first page."""
        return decode_keyset_cursor(self.cursor, kinds) if self.cursor else None


async def _page_request(
    request: Request,
    limit: PageLimit = None,
    cursor: Annotated[str | None, Query(max_length=_CURSOR_MAX_LENGTH)] = None,
) -> PageRequest:
    return PageRequest(limit=page_size(request, limit), cursor=cursor)


PageRequestDep = Annotated[PageRequest, Depends(_page_request)]


def encode_keyset_cursor(values: Sequence[KeysetValue]) -> str:
    """Opaque cursor for a row positioned at ``values`` (one per keyset column)."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    raw = json.dumps(plain, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_value(value: Any, kind: type[KeysetValue]) -> KeysetValue:
    if kind is datetime:
        if not isinstance(value, str) or not is_storable_text(value):
            raise ValueError("a cursor time is a string without NUL")
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("cursor time has no time zone")
        return moment.astimezone(UTC)
    # bool is an int to Python, never to a cursor.
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError("a cursor field should be an integer")
    if kind is int and not _fits_bits(value, _WIDEST_INT_BITS):
        raise ValueError("a cursor integer is out of range")
    if kind is str and (not isinstance(value, str) or not is_storable_text(value)):
        raise ValueError("a cursor field should be a string the database can hold")
    if kind not in (int, str):
        raise TypeError(f"unsupported keyset type {kind!r}")
    return cast(KeysetValue, value)


def decode_keyset_cursor(
    cursor: str, kinds: Sequence[type[KeysetValue]]
) -> tuple[KeysetValue, ...]:
    """Inverse of :func:`encode_keyset_cursor` for a keyset of ``kinds``.

    Raises:
        BadRequest: the cursor was not issued for a keyset of these types.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(decoded, list) or len(decoded) != len(kinds):
            raise ValueError("the cursor has the wrong number of fields")
        return tuple(_decode_value(value, kind) for value, kind in zip(decoded, kinds, strict=True))
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error) as exc:
        raise BadRequest(_FORGED) from exc


def _fits_bits(value: int, bits: int) -> bool:
    bound = 1 << (bits - 1)
    return -bound <= value < bound


def _fits_column(value: KeysetValue, column: InstrumentedAttribute[Any]) -> bool:
    if not isinstance(value, int):
        return True
    column_type = column.type
    for sql_type, bits in _INT_BITS:
        if isinstance(column_type, sql_type):
            return _fits_bits(value, bits)
    return True


def keyset_page_by(
    query: Select[Any],
    *,
    columns: Sequence[InstrumentedAttribute[Any]],
    after: Sequence[KeysetValue] | None,
    limit: int,
) -> Select[Any]:
    """A page of ``query`` ordered by ``columns``, all descending, after ``after``.

    The last column must be unique (an id) so the order is total. Fetches one
    extra row so the caller can tell whether a next page exists. An index on
    ``(..., *columns)`` makes each page a bounded range scan.

    Raises:
        BadRequest: an integer of ``after`` does not fit its column (a forged cursor).
    """
    if after is not None:
        if len(after) != len(columns):
            raise ValueError("a keyset position needs one value per column")
        if not all(
            _fits_column(value, column) for value, column in zip(after, columns, strict=True)
        ):
            raise BadRequest(_FORGED)
        position = tuple_(
            *(literal(value, column.type) for value, column in zip(after, columns, strict=True))
        )
        query = query.where(tuple_(*columns) < position)
    return query.order_by(*(column.desc() for column in columns)).limit(limit + 1)


def split_keyset_page(
    rows: Sequence[RowT], limit: int, position: Callable[[RowT], Sequence[KeysetValue]]
) -> tuple[list[RowT], str | None]:
    """Split fetched rows into the page and the cursor of the next one (None at the end)."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode_keyset_cursor(position(page[-1]))
