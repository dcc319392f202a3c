"""All SQL of the metric series: sums per time bucket over the rollup tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform_dashboard.series.catalogue import MetricSpec

__all__ = ["bucket_sums"]


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
    # SUM of a BIGINT is NUMERIC on PostgreSQL: int() every value.
    return {int(row[0]): [int(value) for value in row[1:]] for row in result.all()}
