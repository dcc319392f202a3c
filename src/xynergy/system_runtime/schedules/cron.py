"""Checking a schedule's cron expression and time zone before DBOS ever sees them."""

from __future__ import annotations

import re
from datetime import datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from xynergy.platform.exceptions import ValidationFailed

__all__ = ["check_cron", "check_timezone", "shortest_interval_seconds"]

# Fields, lists, ranges, steps and the L/W/# forms; nothing else reaches croniter.
_CRON_TEXT = re.compile(r"^[0-9A-Za-z*/,?#@ -]{1,120}$")
# Minute-first (five fields) or DBOS's seconds-first form (six fields).
_FIELD_COUNTS = (5, 6)
# croniter lists the seconds field last in its expanded fields.
_SECONDS_FIELD = 5


def check_timezone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``.

    Raises:
        ValidationFailed: it is not a known time zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"timezone: {name!r} is not an IANA time zone.") from None


def _values(field: list[Any], full: range) -> list[int]:
    return list(full) if field == ["*"] else sorted(int(value) for value in field)


def shortest_interval_seconds(cron: str) -> int:
    """The shortest time between two fires of ``cron``, from its times of day.

    Computed from the expanded second, minute and hour fields, without iterating
    fires (a cron firing every second would take 86,400 steps a day). The gap
    across midnight assumes the next day fires too, so a cron whose days do not
    follow each other may be judged stricter than it is, never looser. Time zone
    changes (DST) are not considered.
    """
    expanded = croniter(cron, second_at_beginning=True).expanded
    minutes, hours = _values(expanded[0], range(60)), _values(expanded[1], range(24))
    seconds = _values(expanded[5], range(60)) if len(expanded) > _SECONDS_FIELD else [0]
    # From the last fire of a minute (hour, day) to the first fire of the next one.
    minute_turn = seconds[0] - seconds[-1]
    hour_turn = (minutes[0] - minutes[-1]) * 60 + minute_turn
    gaps = [later - earlier for earlier, later in pairwise(seconds)]
    gaps += [(later - earlier) * 60 + minute_turn for earlier, later in pairwise(minutes)]
    gaps += [(later - earlier) * 3600 + hour_turn for earlier, later in pairwise(hours)]
    gaps.append((hours[0] + 24 - hours[-1]) * 3600 + hour_turn)
    return min(gaps)


def check_cron(cron: str, zone: ZoneInfo, *, min_interval_seconds: int) -> str:
    """``cron``, normalised, if it is valid and fires at most once per minimum interval.

    Raises:
        ValidationFailed: not a cron expression, one that never fires, or one that
            fires more often than ``min_interval_seconds``.
    """
    text = " ".join(cron.split())
    macro = text.startswith("@")
    if not _CRON_TEXT.fullmatch(text) or (not macro and len(text.split(" ")) not in _FIELD_COUNTS):
        raise ValidationFailed(
            "cron: five fields (minute hour day month weekday), or six with seconds first."
        )
    if not croniter.is_valid(text, second_at_beginning=True):
        raise ValidationFailed(f"cron: {text!r} is not a valid cron expression.")
    try:
        # Raises when no date matches (30 February); bounded by croniter's own search.
        croniter(text, datetime.now(zone), second_at_beginning=True).get_next(datetime)
        shortest = shortest_interval_seconds(text)
    except (CroniterBadCronError, CroniterBadDateError, ValueError):
        raise ValidationFailed(f"cron: {text!r} never fires.") from None
    if shortest < min_interval_seconds:
        raise ValidationFailed(
            f"cron: {text!r} fires every {shortest} s at times; schedules fire at most "
            f"once per {min_interval_seconds} s."
        )
    return text
