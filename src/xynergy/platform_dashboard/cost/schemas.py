"""The cost view's response schemas: the AI Routing Engine's spend report as this
service reads it (services share no code, so the contract is restated here and
validated on every answer)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field

__all__ = ["CostBreakdown", "CostReport", "CostTotals", "TenantCost"]

Usd = Annotated[str, Field(examples=["12.500000000"], description="US dollars, 9 decimals.")]


class CostTotals(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Usd
    saved_usd: Usd = Field(description="What cache hits and joined calls would have cost.")
    cache_hits: int
    deduplicated: int
    errors: int


class CostDay(CostTotals):
    day: date


class CostGroup(CostTotals):
    name: str = Field(description='A key id ("" for calls without a key), model, task or tenant.')


class CostBreakdown(BaseModel):
    items: list[CostGroup] = Field(description="The groups that cost most, most first.")
    other: CostTotals | None = Field(description="The rest, summed; null when all are listed.")


class BudgetUse(BaseModel):
    key_id: str | None = Field(description="Null for the tenant's own budget.")
    limit_usd: Usd
    spent_usd: Usd
    percent: float | None


class CostReport(BaseModel):
    month: str = Field(examples=["2026-12"])
    tenant_id: str | None = Field(description="Null: every tenant of the platform, summed.")
    since: date
    until: date
    totals: CostTotals
    days: list[CostDay]
    models: CostBreakdown
    tasks: CostBreakdown
    keys: CostBreakdown | None = Field(description="One tenant's report: per key.")
    tenants: CostBreakdown | None = Field(description="The platform's report: per tenant.")
    budgets: list[BudgetUse] = Field(description="Month budgets against the month's spend.")
    projected_month_end_usd: Usd | None = Field(
        description="Month-to-date spend divided by the elapsed fraction of the month "
        "(linear); a past month's actual spend; null during the month's first UTC day."
    )


class TenantCost(CostTotals):
    tenant_id: str
    name: str | None
