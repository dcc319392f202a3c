"""Service triggers API: ``POST /api/services/{service}/trigger``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request

from xynergy.platform.exceptions import (
    BudgetExceeded,
    Conflict,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from xynergy.platform.idempotency import idempotency_key_of
from xynergy.platform.routing import api_router, raises, rate_limit
from xynergy.system_runtime.auth import ContextDep, WorkflowsWriter
from xynergy.system_runtime.triggers import service as triggers
from xynergy.system_runtime.triggers.schemas import TriggerRequest, TriggerResult

__all__ = ["router"]

router = api_router(prefix="/api", tags=["service triggers"])

# Using the runtime to act takes workflows:write; the operation's own scopes are
# checked on top, per operation, before anything is called.
ServiceSlug = Annotated[str, Path(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9-]{0,62}$")]


@router.post("/services/{service}/trigger")
@rate_limit("workflow_start")
@raises(
    Conflict,
    BudgetExceeded,
    triggers.TriggerFailed,
    UpstreamTimeout,
    UpstreamUnavailable,
)
async def trigger_service(
    service: ServiceSlug,
    body: TriggerRequest,
    request: Request,
    auth: WorkflowsWriter,
    context: ContextDep,
) -> TriggerResult:
    """Call one catalogue operation of ``service`` with this key's scopes and answer
    its result. Only the catalogue's operations of that service are reachable; the key
    needs the operation's scopes (403 before anything is called)."""
    return await triggers.trigger(
        context,
        caller=auth,
        service=service,
        body=body,
        idempotency_key=idempotency_key_of(request.scope),
    )
