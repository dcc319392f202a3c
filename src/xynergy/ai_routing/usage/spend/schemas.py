"""Response schemas of the spend reports. Money as in the usage API: nine-decimal
US-dollar strings from integer nano-dollars, never floats."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from xynergy.ai_routing.usage.schemas import Usd

__all__ = [
    "BudgetUse",
    "SpendBreakdown",
    "SpendDay",
    "SpendGroup",
    "SpendReport",
    "SpendTotals",
    "TenantSpend",
]


class SpendTotals(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Usd
    saved_usd: Usd = Field(
        description="What the cache hits and joined calls would have cost at their models' "
        "catalogue prices: the cache's savings."
    )
    cache_hits: int
    deduplicated: int
    errors: int


class SpendDay(SpendTotals):
    day: date


class SpendGroup(SpendTotals):
    name: str = Field(description='A key id ("" for calls without a key), model, task or tenant.')


class SpendBreakdown(BaseModel):
    items: list[SpendGroup] = Field(description="The groups that cost most, most first.")
    other: SpendTotals | None = Field(
        description="Every group past those listed, summed; null when all are listed."
    )


class BudgetUse(BaseModel):
    """A month budget against the month's spend (the budget's current limit)."""

    key_id: str | None = Field(description="Null for the tenant's own budget.")
    limit_usd: Usd
    spent_usd: Usd
    percent: float | None = Field(description="spent / limit x 100, 2 decimals; null at limit 0.")


class SpendReport(BaseModel):
    month: str = Field(examples=["2026-12"])
    tenant_id: str | None = Field(description="Null: every tenant of the platform, summed.")
    since: date = Field(description="First UTC day of the month.")
    until: date = Field(description="Last UTC day counted: today in the current month.")
    totals: SpendTotals
    days: list[SpendDay] = Field(description="Per UTC day that has any usage, in order.")
    models: SpendBreakdown
    tasks: SpendBreakdown
    keys: SpendBreakdown | None = Field(description="One tenant's report: per key.")
    tenants: SpendBreakdown | None = Field(description="The platform's report: per tenant.")
    budgets: list[BudgetUse] = Field(description="Month budgets; the tenant's first.")
    projected_month_end_usd: Usd | None = Field(
        description="Linear projection: month-to-date spend divided by the elapsed fraction "
        "of the month. A past month's actual spend; null during the month's first UTC day, "
        "when a few hours say little about a month."
    )


class TenantSpend(SpendTotals):
    tenant_id: str
    name: str | None = Field(description="Null if the tenant no longer exists.")
