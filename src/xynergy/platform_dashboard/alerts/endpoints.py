"""/api/alerts: rules (CRUD) and their history, one cursor page at a time.

Reading needs ``metrics:read``; writing also ``alerts:write``. A tenant's key sees
and changes only its tenant's rules; platform-wide rules (and the kinds that
watch the platform) are the operator's. An operator may read one tenant's rules
and history with ``?tenant=`` (as in /api/cost); a tenant's key naming another
tenant gets 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.operator import is_operator, visible_tenant
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, idempotency_exempt, raises
from xynergy.platform.schemas import Page, ResourceId
from xynergy.platform_dashboard.alerts import service
from xynergy.platform_dashboard.alerts.config import AlertSettings
from xynergy.platform_dashboard.alerts.schemas import (
    AlertEvent,
    AlertRule,
    AlertRuleCreate,
    AlertRuleUpdate,
    AlertRuleWithSecret,
)
from xynergy.platform_dashboard.auth import METRICS_SCOPE

__all__ = ["ALERTS_WRITE_SCOPE", "router"]

ALERTS_WRITE_SCOPE = "alerts:write"

router = api_router(prefix="/api/alerts", tags=["alerts"])

AlertReader = Annotated[AuthContext, Depends(require_scopes(METRICS_SCOPE))]
AlertWriter = Annotated[AuthContext, Depends(require_scopes(METRICS_SCOPE, ALERTS_WRITE_SCOPE))]


async def _bounds(request: Request, session: SessionDep, auth: AlertWriter) -> service.RuleBounds:
    alerts: AlertSettings = request.app.state.alerts
    return service.RuleBounds(
        alerts=alerts,
        operator=await is_operator(session, auth),
        allow_private_addresses=request.app.state.platform.settings.outbox_allow_private_addresses,
    )


BoundsDep = Annotated[service.RuleBounds, Depends(_bounds)]

TenantParam = Annotated[
    str | None,
    Query(
        min_length=32,
        max_length=32,
        pattern=r"^[0-9a-f]{32}$",
        description="Operators: one tenant's rules; omitted: the caller's own.",
    ),
]


async def _listed_tenant(session: SessionDep, auth: AlertReader, tenant: TenantParam = None) -> str:
    # Rules belong to one tenant each: with no tenant named, an operator reads its own
    # (the platform-wide rules live on the operator tenant).
    visible = await visible_tenant(session, auth, tenant)
    return visible if visible is not None else auth.tenant_id


ListedTenant = Annotated[str, Depends(_listed_tenant)]


@router.post("", status_code=201)
@idempotency_exempt("The answer holds the webhook secret, shown once: never stored.")
@raises(Forbidden, Conflict, ValidationFailed)
async def create_rule(
    body: AlertRuleCreate, session: SessionDep, auth: AlertWriter, bounds: BoundsDep
) -> AlertRuleWithSecret:
    """Create an alert rule; the answer holds its webhook secret, shown only this once."""
    rule = await service.create_rule(session, tenant_id=auth.tenant_id, data=body, bounds=bounds)
    return AlertRuleWithSecret.model_validate(rule)


@router.get("")
@raises(NotFound)
async def list_rules(
    session: SessionDep, tenant_id: ListedTenant, page: PageParamsDep
) -> Page[AlertRule]:
    """List alert rules with their state, newest first, one cursor page at a time."""
    return await service.list_rules(session, tenant_id=tenant_id, params=page)


@router.get("/events")
@raises(NotFound)
async def list_events(
    session: SessionDep,
    tenant_id: ListedTenant,
    page: PageParamsDep,
    rule: Annotated[
        str | None, Query(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")
    ] = None,
) -> Page[AlertEvent]:
    """Alert history (fired, resolved), newest first, one cursor page at a time."""
    return await service.list_events(session, tenant_id=tenant_id, params=page, rule_id=rule)


@router.get("/{rule_id}")
@raises(NotFound)
async def get_rule(rule_id: ResourceId, session: SessionDep, auth: AlertReader) -> AlertRule:
    """One alert rule and its state (without its webhook secret)."""
    rule = await service.get_rule(session, tenant_id=auth.tenant_id, rule_id=rule_id)
    return AlertRule.model_validate(rule)


@router.patch("/{rule_id}")
@idempotency_exempt("A first webhook URL answers the new webhook secret, shown once.")
@raises(NotFound, Forbidden, ValidationFailed)
async def update_rule(
    rule_id: ResourceId,
    body: AlertRuleUpdate,
    session: SessionDep,
    auth: AlertWriter,
    bounds: BoundsDep,
) -> AlertRuleWithSecret:
    """Change an alert rule; a first webhook URL answers its secret, shown only this once."""
    rule, secret = await service.update_rule(
        session, tenant_id=auth.tenant_id, rule_id=rule_id, changes=body, bounds=bounds
    )
    shown = AlertRule.model_validate(rule).model_dump()
    return AlertRuleWithSecret(**shown, webhook_secret=secret)


@router.delete("/{rule_id}", status_code=204)
@raises(NotFound, Forbidden)
async def delete_rule(
    rule_id: ResourceId, session: SessionDep, auth: AlertWriter, bounds: BoundsDep
) -> Response:
    """Delete an alert rule and its history."""
    await service.delete_rule(session, tenant_id=auth.tenant_id, rule_id=rule_id, bounds=bounds)
    return Response(status_code=204)
