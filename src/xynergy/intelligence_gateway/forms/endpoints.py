"""Intake form admin endpoints: a tenant's forms, their origins and webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, Response

from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.forms import service
from xynergy.intelligence_gateway.forms.schemas import (
    Form,
    FormCreate,
    FormFilters,
    FormKind,
    FormUpdate,
    FormUpdated,
    FormWithSecret,
)
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.cache import PlatformCache
from xynergy.platform.db.session import SessionDep
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, idempotency_exempt
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["forms"])

IntakeReader = Annotated[AuthContext, Depends(require_scopes("intake:read"))]
IntakeAdmin = Annotated[AuthContext, Depends(require_scopes("intake:admin"))]


# Dependencies are async: a plain def would be sent to the thread pool per request.
async def _rules(request: Request) -> service.FormRules:
    intake: IntakeSettings = request.app.state.intake
    settings = request.app.state.platform.settings
    return service.FormRules(
        intake=intake,
        production=settings.environment == "production",
        allow_private_webhooks=settings.outbox_allow_private_addresses,
    )


async def _cache(request: Request) -> PlatformCache:
    cache: PlatformCache = request.app.state.platform.cache
    return cache


async def _filters(
    kind: Annotated[FormKind | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> FormFilters:
    return FormFilters(kind=kind, active=active)


RulesDep = Annotated[service.FormRules, Depends(_rules)]
CacheDep = Annotated[PlatformCache, Depends(_cache)]
FiltersDep = Annotated[FormFilters, Depends(_filters)]


@router.post("/forms", status_code=201)
@idempotency_exempt("The answer holds the webhook secret, shown once: never stored.")
async def create_form(
    body: FormCreate, session: SessionDep, auth: IntakeAdmin, rules: RulesDep
) -> FormWithSecret:
    """Create an intake form; the answer holds its webhook secret, shown only this once."""
    form = await service.create_form(session, tenant_id=auth.tenant_id, data=body, rules=rules)
    return FormWithSecret.model_validate(form)


@router.get("/forms")
async def list_forms(
    session: SessionDep, auth: IntakeReader, filters: FiltersDep, page: PageParamsDep
) -> Page[Form]:
    """List intake forms, newest first, one cursor page at a time."""
    return await service.list_forms(session, tenant_id=auth.tenant_id, filters=filters, params=page)


@router.get("/forms/{form_id}")
async def get_form(form_id: ResourceId, session: SessionDep, auth: IntakeReader) -> Form:
    """One intake form (without its webhook secret)."""
    form = await service.get_form(session, tenant_id=auth.tenant_id, form_id=form_id)
    return Form.model_validate(form)


@router.patch("/forms/{form_id}")
@idempotency_exempt(
    "rotate_webhook_secret answers the new webhook secret, shown once: never stored."
)
async def update_form(
    form_id: ResourceId, body: FormUpdate, session: SessionDep, auth: IntakeAdmin, rules: RulesDep
) -> FormUpdated:
    """Change a form; ``rotate_webhook_secret`` answers a new secret, shown only this once."""
    form, secret = await service.update_form(
        session, tenant_id=auth.tenant_id, form_id=form_id, changes=body, rules=rules
    )
    shown = Form.model_validate(form).model_dump()
    return FormUpdated(**shown, webhook_secret=secret)


@router.delete("/forms/{form_id}", status_code=204)
async def delete_form(
    form_id: ResourceId, session: SessionDep, auth: IntakeAdmin, cache: CacheDep
) -> Response:
    """Delete a form, its submissions and its pending webhook messages."""
    await service.delete_form(session, tenant_id=auth.tenant_id, form_id=form_id, cache=cache)
    return Response(status_code=204)
