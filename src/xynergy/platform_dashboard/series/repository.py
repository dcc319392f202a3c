"""All SQL of the metric series: sums per time bucket (and per group) over the rollup tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform_dashboard.series.catalogue import MetricSpec

__all__ = ["GroupKey", "bucket_sums", "group_totals", "grouped_bucket_sums"]

GroupKey = tuple[str | None, ...]


def _ints(values: Sequence[Any]) -> list[int]:
    # SUM of a BIGINT is NUMERIC on PostgreSQL: int() every value.
    return [int(value) for value in values]


async def bucket_sums(
    session: AsyncSession,
    spec: MetricSpec,
    *,
    first_minute: int,
    step_minutes: int,
    points: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[int, list[int]]:
    """The metric's sums per bucket (``(minute - first_minute) // step_minutes``).

    Reads the rows of ``points`` buckets (an index range on ``minute``) and answers
    at most ``points`` groups; buckets without rows are absent.
    """
    table = spec.table
    minute = table.c.minute
    # The bucket is computed in a subquery and grouped outside: PostgreSQL would
    # not match the same expression in SELECT and GROUP BY with separate parameters.
    rows = (
        select(
            ((minute - first_minute) // step_minutes).label("bucket"),
            *(expression.label(f"sum_{index}") for index, expression in enumerate(spec.sums)),
        )
        .where(minute >= first_minute, minute < first_minute + points * step_minutes, *where)
        .subquery()
    )
    sums: list[Any] = [
        func.coalesce(func.sum(rows.c[f"sum_{index}"]), 0) for index in range(len(spec.sums))
    ]
    query = (
        select(rows.c.bucket, *sums).group_by(rows.c.bucket).order_by(rows.c.bucket).limit(points)
    )
    result = await session.execute(query)
    return {int(row[0]): _ints(row[1:]) for row in result.all()}


async def group_totals(
    session: AsyncSession,
    table: Table,
    *,
    groups: Sequence[str],
    volume: ColumnElement[int],
    sums: Sequence[ColumnElement[int]],
    first_minute: int,
    end_minute: int,
    where: Sequence[ColumnElement[bool]] = (),
    limit: int,
) -> list[tuple[GroupKey, int, list[int]]]:
    """The busiest ``limit`` groups of ``table`` over the minutes, busiest first.

    Each answer is the group's key (its ``groups`` columns), its ``volume`` summed
    and ``sums`` summed. One index range on ``minute``, one GROUP BY, a LIMIT.
    """
    columns = [table.c[name] for name in groups]
    total = func.coalesce(func.sum(volume), 0)
    query = (
        select(*columns, total, *(func.coalesce(func.sum(expr), 0) for expr in sums))
        .where(table.c.minute >= first_minute, table.c.minute < end_minute, *where)
        .group_by(*columns)
        # Ties by name: the same range answers the same list.
        .order_by(total.desc(), *columns)
        .limit(limit)
    )
    result = await session.execute(query)
    width = len(columns)
    return [(tuple(row[:width]), int(row[width]), _ints(row[width + 1 :])) for row in result.all()]


def _one_of(table: Table, groups: Sequence[str], keys: Sequence[GroupKey]) -> ColumnElement[bool]:
    # OR of ANDs rather than a row-value IN: a handful of keys, on both databases,
    # and a null tenant (public requests) matched with IS NULL.
    return or_(
        *(
            and_(
                *(
                    table.c[name].is_(None) if value is None else table.c[name] == value
                    for name, value in zip(groups, key, strict=True)
                )
            )
            for key in keys
        )
    )


async def grouped_bucket_sums(
    session: AsyncSession,
    spec: MetricSpec,
    *,
    groups: Sequence[str],
    keys: Sequence[GroupKey],
    first_minute: int,
    step_minutes: int,
    points: int,
    where: Sequence[ColumnElement[bool]] = (),
) -> dict[GroupKey, dict[int, list[int]]]:
    """:func:`bucket_sums` for each of the groups ``keys`` at once (at most
    ``points x len(keys)`` rows answered)."""
    if not keys:
        return {}
    table = spec.table
    minute = table.c.minute
    rows = (
        select(
            ((minute - first_minute) // step_minutes).label("bucket"),
            *(table.c[name].label(f"group_{index}") for index, name in enumerate(groups)),
            *(expression.label(f"sum_{index}") for index, expression in enumerate(spec.sums)),
        )
        .where(
            minute >= first_minute,
            minute < first_minute + points * step_minutes,
            _one_of(table, groups, keys),
            *where,
        )
        .subquery()
    )
    group_columns = [rows.c[f"group_{index}"] for index in range(len(groups))]
    sums: list[Any] = [
        func.coalesce(func.sum(rows.c[f"sum_{index}"]), 0) for index in range(len(spec.sums))
    ]
    query = (
        select(*group_columns, rows.c.bucket, *sums)
        .group_by(*group_columns, rows.c.bucket)
        .order_by(*group_columns, rows.c.bucket)
        .limit(points * len(keys))
    )
    answer: dict[GroupKey, dict[int, list[int]]] = {}
    width = len(groups)
    for row in (await session.execute(query)).all():
        answer.setdefault(tuple(row[:width]), {})[int(row[width])] = _ints(row[width + 1 :])
    return answer
