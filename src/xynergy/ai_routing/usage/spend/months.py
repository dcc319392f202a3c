"""Report months: parsing within bounds, and the linear month-end projection."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from xynergy.platform.exceptions import ValidationFailed

__all__ = ["MONTH_PATTERN", "Month", "parse_month", "projected_month_end"]

MONTH_PATTERN = r"^\d{4}-\d{2}$"
_MONTH = re.compile(MONTH_PATTERN)
_MONTHS_PER_YEAR = 12


@dataclass(frozen=True, slots=True)
class Month:
    """A UTC calendar month: ``first`` day, and the ``following`` month's first day."""

    first: date
    following: date

    @classmethod
    def of(cls, day: date) -> Month:
        first = day.replace(day=1)
        if first.month == _MONTHS_PER_YEAR:
            return cls(first, date(first.year + 1, 1, 1))
        return cls(first, date(first.year, first.month + 1, 1))

    @property
    def label(self) -> str:
        return f"{self.first.year:04d}-{self.first.month:02d}"

    @property
    def last(self) -> date:
        return self.following - timedelta(days=1)

    def until(self, today: date) -> date:
        """The last day with data so far: today in the current month, else the last day."""
        return min(self.last, today)

    def months_before(self, other: Month) -> int:
        return (other.first.year - self.first.year) * _MONTHS_PER_YEAR + (
            other.first.month - self.first.month
        )


def parse_month(value: str | None, *, now: datetime, max_months: int) -> Month:
    """The month ``value`` (``YYYY-MM``; None: the current one), within the reachable range.

    Raises:
        ValidationFailed: not a month, in the future, or further back than ``max_months``.
    """
    current = Month.of(now.astimezone(UTC).date())
    if value is None:
        return current
    if not _MONTH.fullmatch(value):
        raise ValidationFailed("month: expected YYYY-MM.")
    year, month = int(value[:4]), int(value[5:])
    if not 1 <= month <= _MONTHS_PER_YEAR or year < 1:
        raise ValidationFailed("month: not a calendar month.")
    asked = Month.of(date(year, month, 1))
    back = asked.months_before(current)
    if back < 0:
        raise ValidationFailed("month: in the future.")
    if back >= max_months:
        raise ValidationFailed(
            f"month: reports reach back {max_months} months, the current one included."
        )
    return asked


def projected_month_end(cost_nanos: int, month: Month, now: datetime) -> int | None:
    """Month-end spend if the month goes on at the average rate of its elapsed part
    (linear in the elapsed fraction of the month); a past month's actual spend.

    None before one whole day of the month has passed: a few hours' spend scaled to
    a month says more about the hour than about the month.
    """
    start = datetime.combine(month.first, time(), tzinfo=UTC)
    end = datetime.combine(month.following, time(), tzinfo=UTC)
    if now >= end:
        return cost_nanos
    elapsed = now - start
    if elapsed < timedelta(days=1):
        return None
    # Integer microseconds keep the projection exact and free of float rounding.
    whole = (end - start) // timedelta(microseconds=1)
    part = elapsed // timedelta(microseconds=1)
    return cost_nanos * whole // part
