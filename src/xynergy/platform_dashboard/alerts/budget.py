"""A tenant's month budget use, read from the AI Routing Engine (which keeps budgets).

The evaluator has no caller: it acts for the rule's tenant with ``metrics:read``
only, under a key id that names no key (the engine's spend report checks the
scope and the tenant, and reads nothing else of the key). The tenant is named in
``?tenant=`` too, so the operator tenant's rule reads the operator tenant's own
budget rather than the whole platform.
"""

from __future__ import annotations

from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.runtime import Platform
from xynergy.platform_dashboard.cost.client import read_spend

__all__ = ["EVALUATOR_KEY_ID", "budget_percent"]

EVALUATOR_KEY_ID = "dashboard-alerts"  # who the engine's logs say read the report


def _tenant_budget(budgets: Any) -> float | None:
    if not isinstance(budgets, list):
        return None
    for budget in budgets:
        # The tenant's own budget carries no key id (the others are its keys').
        if isinstance(budget, dict) and budget.get("key_id") is None:
            percent = budget.get("percent")
            return float(percent) if isinstance(percent, int | float) else None
    return None


async def budget_percent(platform: Platform, tenant_id: str) -> float | None:
    """Month-to-date spend as a percentage of the tenant's month budget; None without one."""
    caller = AuthContext(
        tenant_id=tenant_id,
        key_id=EVALUATOR_KEY_ID,
        key_tenant_id=tenant_id,
        scopes=frozenset({"metrics:read"}),
        via="internal",
    )
    report = await read_spend(
        platform.services,
        caller=caller,
        path="/api/spend/overview",
        params={"tenant": tenant_id},
    )
    return _tenant_budget(report.get("budgets") if isinstance(report, dict) else None)
