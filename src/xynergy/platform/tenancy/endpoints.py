"""Admin API: tenants (operator only) and API keys (per tenant)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict, NotFound
from xynergy.platform.pagination import PageParamsDep
from xynergy.platform.routing import api_router, idempotency_exempt, raises, rate_limit
from xynergy.platform.schemas import Page, ResourceId
from xynergy.platform.tenancy import service
from xynergy.platform.tenancy.schemas import (
    ApiKey,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRotate,
    Tenant,
    TenantCreate,
)

__all__ = ["router"]

router = api_router(prefix="/admin", tags=["admin"])

AdminAuth = Annotated[AuthContext, Depends(require_scopes("admin"))]
KeysAdminAuth = Annotated[AuthContext, Depends(require_scopes("keys:admin"))]


def _issued(issued: service.IssuedKey) -> ApiKeyCreated:
    return ApiKeyCreated(key=ApiKey.model_validate(issued.key), secret=issued.secret)


@router.post("/tenants", status_code=201)
@rate_limit("admin")
@raises(Conflict)
async def create_tenant(body: TenantCreate, session: SessionDep, _auth: AdminAuth) -> Tenant:
    """Create a tenant (operator admin keys only)."""
    return Tenant.model_validate(await service.create_tenant(session, name=body.name))


@router.get("/tenants")
@rate_limit("admin")
async def list_tenants(
    session: SessionDep, params: PageParamsDep, _auth: AdminAuth
) -> Page[Tenant]:
    """List tenants, newest first, one cursor page at a time."""
    rows, cursor = await service.list_tenants(session, params=params)
    return Page[Tenant](items=[Tenant.model_validate(r) for r in rows], next_cursor=cursor)


@router.post("/keys", status_code=201)
@rate_limit("admin")
@idempotency_exempt("The answer holds the new key's secret, shown once: never stored.")
@raises(NotFound)
async def create_key(body: ApiKeyCreate, session: SessionDep, auth: KeysAdminAuth) -> ApiKeyCreated:
    """Issue a key for the caller's tenant; the secret is in this response only."""
    issued = await service.create_key(
        session,
        tenant_id=auth.tenant_id,
        name=body.name,
        scopes=body.scopes,
        environment=body.environment,
        expires_in=timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds else None,
        granted_by=auth,
    )
    return _issued(issued)


@router.get("/keys")
@rate_limit("admin")
async def list_keys(
    session: SessionDep, params: PageParamsDep, auth: KeysAdminAuth
) -> Page[ApiKey]:
    """List the caller's tenant's keys (never their secrets)."""
    rows, cursor = await service.list_keys(session, tenant_id=auth.tenant_id, params=params)
    return Page[ApiKey](items=[ApiKey.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/keys/{key_id}")
@rate_limit("admin")
async def get_key(key_id: ResourceId, session: SessionDep, auth: KeysAdminAuth) -> ApiKey:
    """One of the caller's tenant's keys."""
    return ApiKey.model_validate(
        await service.get_key(session, tenant_id=auth.tenant_id, key_id=key_id)
    )


@router.post("/keys/{key_id}/rotate", status_code=201)
@rate_limit("admin")
@idempotency_exempt("The answer holds the new key's secret, shown once: never stored.")
@raises(Conflict)
async def rotate_key(
    key_id: ResourceId,
    body: ApiKeyRotate,
    request: Request,
    session: SessionDep,
    auth: KeysAdminAuth,
) -> ApiKeyCreated:
    """Issue a successor key; the old one keeps working until its grace period ends."""
    platform = request.app.state.platform
    grace = body.grace_seconds
    if grace is None:
        grace = platform.settings.key_rotation_grace_seconds
    issued = await service.rotate_key(
        session,
        tenant_id=auth.tenant_id,
        key_id=key_id,
        grace=timedelta(seconds=grace),
        invalidate=platform.key_verifier.invalidate,
        granted_by=auth,
    )
    return _issued(issued)


@router.post("/keys/{key_id}/revoke")
@rate_limit("admin")
async def revoke_key(
    key_id: ResourceId, request: Request, session: SessionDep, auth: KeysAdminAuth
) -> ApiKey:
    """Revoke a key now, on every replica."""
    key = await service.revoke_key(
        session,
        tenant_id=auth.tenant_id,
        key_id=key_id,
        invalidate=request.app.state.platform.key_verifier.invalidate,
    )
    return ApiKey.model_validate(key)
