"""Report months and the month-end projection, at a fixed clock."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from xynergy.ai_routing.usage.spend.months import Month, parse_month, projected_month_end
from xynergy.platform.exceptions import ValidationFailed


class TestProjection:
    MONTH = Month.of(date(2026, 4, 1))  # 30 days

    @pytest.mark.parametrize(
        ("now", "spent", "projected"),
        [
            (datetime(2026, 4, 1, 12, tzinfo=UTC), 1_000, None),  # the first day: no projection
            (datetime(2026, 4, 2, tzinfo=UTC), 1_000, 30_000),  # 1 day of 30
            (datetime(2026, 4, 16, tzinfo=UTC), 15_000, 30_000),  # half the month
            (datetime(2026, 4, 11, 12, tzinfo=UTC), 7, 20),  # 10.5 of 30 days, rounded down
            (datetime(2026, 5, 3, tzinfo=UTC), 4_242, 4_242),  # the month is over
        ],
    )
    def test_linear_in_the_elapsed_fraction_of_the_month(
        self, now: datetime, spent: int, projected: int | None
    ) -> None:
        assert projected_month_end(spent, self.MONTH, now) == projected

    def test_months_are_parsed_against_a_fixed_clock(self) -> None:
        now = datetime(2026, 12, 1, 5, tzinfo=UTC)
        assert parse_month(None, now=now, max_months=24).label == "2026-12"
        assert parse_month("2025-01", now=now, max_months=24).first == date(2025, 1, 1)
        with pytest.raises(ValidationFailed):
            parse_month("2024-12", now=now, max_months=24)
        with pytest.raises(ValidationFailed):
            parse_month("2027-01", now=now, max_months=24)
        assert Month.of(date(2026, 12, 31)).following == date(2027, 1, 1)
