"""Request and response schemas of the usage and budgets API.

Money is exact: costs are stored as integer nano-dollars and shown as decimal
strings with nine places (``"0.000125000"``), never floats.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from xynergy.ai_routing.usage.periods import Period
from xynergy.platform.schema_bounds import decimal_schema

__all__ = [
    "KEY_ID_PATTERN",
    "LIMIT_USD_MAX",
    "NANOS_PER_USD",
    "Budget",
    "BudgetSet",
    "UsageReport",
    "UsageRow",
    "UsageTotals",
    "Usd",
    "nanos_to_usd",
    "usd_to_nanos",
]

_USD_DECIMALS = 9
NANOS_PER_USD = 10**_USD_DECIMALS
KEY_ID_PATTERN = r"^[0-9a-f]{32}$"
# Redis' Lua numbers are doubles, exact up to 2**53 nanos (~$9.007M); a limit
# above that could be compared inexactly.
LIMIT_USD_MAX = Decimal(9_000_000)

KeyId = Annotated[str, StringConstraints(min_length=32, max_length=32, pattern=KEY_ID_PATTERN)]
Usd = Annotated[str, Field(examples=["12.500000000"], description="US dollars, 9 decimals.")]


def nanos_to_usd(nanos: int) -> str:
    """``1_500_000_000`` -> ``"1.500000000"``."""
    return f"{Decimal(nanos).scaleb(-9):.9f}"


def usd_to_nanos(usd: Decimal) -> int:
    """Exact for at most nine decimals (validated by :class:`BudgetSet`)."""
    return int(usd * NANOS_PER_USD)


class BudgetSet(BaseModel):
    """Create or change the tenant's budget for a period, or one key's."""

    model_config = ConfigDict(extra="forbid")

    period: Period
    key_id: KeyId | None = Field(
        default=None, description="One of the tenant's keys; omitted for the whole tenant."
    )
    limit_usd: Annotated[
        Decimal,
        Field(
            ge=0,
            le=LIMIT_USD_MAX,
            decimal_places=_USD_DECIMALS,
            description="A decimal string or number, at most 9 decimals.",
            examples=["25.00"],
        ),
        WithJsonSchema(
            decimal_schema(
                integer_digits=len(str(LIMIT_USD_MAX)),
                decimal_places=_USD_DECIMALS,
                maximum=int(LIMIT_USD_MAX),
            )
        ),
    ]


class Budget(BaseModel):
    """A budget and what has been spent against it in the current period."""

    period: Period
    key_id: str | None = Field(description="Null for the whole tenant's budget.")
    limit_usd: Usd
    spent_usd: Usd
    remaining_usd: Usd
    period_start: date = Field(description="First UTC day of the current period.")
    resets_at: datetime = Field(description="When the current period ends (UTC).")
    updated_at: datetime


class UsageTotals(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Usd
    cache_hits: int
    deduplicated: int
    errors: int


class UsageRow(UsageTotals):
    """Usage of one model for one task on one UTC day."""

    day: date
    model: str
    task: str


class UsageReport(BaseModel):
    since: date
    until: date
    totals: UsageTotals = Field(description="Over the whole window, truncated or not.")
    rows: list[UsageRow] = Field(description="By day, model and task, in that order.")
    truncated: bool = Field(description="True when there were more rows than returned.")
