"""Budget periods: UTC days and UTC calendar months."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, get_args

__all__ = ["PERIODS", "BudgetCounterRef", "Period", "period_end", "period_start"]

Period = Literal["day", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)


def period_start(period: Period, now: datetime) -> date:
    """The first UTC day of the ``period`` containing ``now``."""
    today = now.astimezone(UTC).date()
    return today if period == "day" else today.replace(day=1)


def period_end(period: Period, start: date) -> datetime:
    """The UTC instant the ``period`` that began on ``start`` ends (the next one begins)."""
    if period == "day":
        following = start + timedelta(days=1)
    elif start.month == 12:
        following = date(start.year + 1, 1, 1)
    else:
        following = date(start.year, start.month + 1, 1)
    return datetime.combine(following, time(), tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BudgetCounterRef:
    """One budget's counter in one period: what a reservation touches."""

    subject: str  # "" for the whole tenant, else a key id
    period: Period
    start: date
    limit_nanos: int

    @property
    def resets_at(self) -> datetime:
        """When this counter's period ends."""
        return period_end(self.period, self.start)
