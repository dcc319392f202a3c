"""Tenant and key operations, shared by the admin API and the CLI.

Functions only flush; the caller's unit of work commits. A change that ends a key
early (revocation, rotation) bumps the revocation epoch in the same transaction,
which every replica polls; the faster Redis broadcast is registered to run after
the commit, so no replica can reload the old state between the broadcast and
the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.keys import KeyEnvironment, generate_key
from xynergy.platform.auth.scopes import (
    ADMIN_SCOPE,
    KNOWN_SCOPES,
    OPERATOR_TENANT_NAME,
    unknown_scopes,
)
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import on_commit
from xynergy.platform.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from xynergy.platform.pagination import PageParams, split_page
from xynergy.platform.tenancy.models import ApiKey, Tenant
from xynergy.platform.tenancy.repository import (
    KeyRepository,
    RevocationEpochRepository,
    TenantRepository,
)

__all__ = [
    "BOOTSTRAP_TENANT",
    "IssuedKey",
    "Invalidate",
    "create_key",
    "create_tenant",
    "ensure_bootstrap_admin_key",
    "get_key",
    "list_keys",
    "list_tenants",
    "revoke_key",
    "rotate_key",
]

BOOTSTRAP_TENANT = OPERATOR_TENANT_NAME


# Drops a key hash from every replica's verified-key cache.
Invalidate = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key record with its plaintext, which exists only in this response."""

    key: ApiKey
    secret: str


async def create_tenant(session: AsyncSession, *, name: str) -> Tenant:
    """Create a tenant; names are unique."""
    repository = TenantRepository(session)
    if await repository.get_by_name(name) is not None:
        raise Conflict(f"A tenant named {name!r} already exists.")
    try:
        return await repository.add(Tenant(name=name))
    except IntegrityError as exc:
        raise Conflict(f"A tenant named {name!r} already exists.") from exc


async def list_tenants(
    session: AsyncSession, *, params: PageParams
) -> tuple[list[Tenant], str | None]:
    """One page of tenants, newest first."""
    rows = await TenantRepository(session).page(params)
    return split_page(rows, params, lambda t: (t.created_at, t.id))


def _check_grantable(scopes: list[str], granted_by: AuthContext | None) -> None:
    unknown = unknown_scopes(scopes)
    if unknown:
        valid = ", ".join(sorted(KNOWN_SCOPES))
        raise ValidationFailed(f"Unknown scope(s): {', '.join(unknown)}. Valid scopes: {valid}.")
    if granted_by is None or granted_by.is_admin:
        return
    if ADMIN_SCOPE in scopes or not set(scopes) <= granted_by.scopes:
        raise Forbidden("A key can only grant scopes its creator holds (never admin).")


async def create_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    name: str,
    scopes: list[str],
    environment: KeyEnvironment = "live",
    expires_in: timedelta | None = None,
    granted_by: AuthContext | None = None,
    rotated_from: str | None = None,
) -> IssuedKey:
    """Issue a key for ``tenant_id``; ``granted_by`` None means the operator (CLI)."""
    _check_grantable(scopes, granted_by)
    tenant = await TenantRepository(session).get(tenant_id)
    if tenant is None:
        raise NotFound("No such tenant.")
    if ADMIN_SCOPE in scopes and tenant.name != OPERATOR_TENANT_NAME:
        # admin acts for every tenant: a customer tenant's key must never hold it.
        raise ValidationFailed(
            f"The {ADMIN_SCOPE!r} scope is reserved for keys of the operator tenant "
            f"({OPERATOR_TENANT_NAME!r}); grant this tenant's key the scopes it needs."
        )
    generated = generate_key(environment)
    key = ApiKey(
        tenant_id=tenant_id,
        name=name,
        key_hash=generated.key_hash,
        display_prefix=generated.display_prefix,
        last4=generated.last4,
        environment=environment,
        scopes=sorted(set(scopes)),
        expires_at=utcnow() + expires_in if expires_in else None,
        rotated_from=rotated_from,
    )
    await KeyRepository(session).add(key)
    return IssuedKey(key=key, secret=generated.plaintext)


async def get_key(session: AsyncSession, *, tenant_id: str, key_id: str) -> ApiKey:
    """A key of ``tenant_id``; another tenant's key id answers NotFound."""
    key = await KeyRepository(session).get_for_tenant(key_id, tenant_id)
    if key is None:
        raise NotFound("No such key.")
    return key


async def list_keys(
    session: AsyncSession, *, tenant_id: str, params: PageParams
) -> tuple[list[ApiKey], str | None]:
    """One page of a tenant's keys, newest first."""
    rows = await KeyRepository(session).page_for_tenant(tenant_id, params)
    return split_page(rows, params, lambda k: (k.created_at, k.id))


async def rotate_key(
    session: AsyncSession,
    *,
    tenant_id: str,
    key_id: str,
    grace: timedelta,
    invalidate: Invalidate,
    granted_by: AuthContext | None = None,
) -> IssuedKey:
    """Issue a successor with the same scopes; the old key works until the grace ends."""
    old = await get_key(session, tenant_id=tenant_id, key_id=key_id)
    reason = old.unusable_reason(utcnow())
    if reason is not None or old.grace_until is not None:
        raise Conflict(f"Only an active key can be rotated (this one is {reason or 'rotated'}).")
    remaining = old.expires_at - utcnow() if old.expires_at else None
    issued = await create_key(
        session,
        tenant_id=tenant_id,
        name=old.name,
        scopes=list(old.scopes),
        environment="test" if old.environment == "test" else "live",
        expires_in=remaining,
        granted_by=granted_by,
        rotated_from=old.id,
    )
    old.grace_until = utcnow() + grace
    await session.flush()
    await RevocationEpochRepository(session).bump()
    old_hash = old.key_hash
    on_commit(session, lambda: invalidate(old_hash))
    return issued


async def revoke_key(
    session: AsyncSession, *, tenant_id: str, key_id: str, invalidate: Invalidate
) -> ApiKey:
    """Revoke a key at once, on every replica (idempotent)."""
    key = await get_key(session, tenant_id=tenant_id, key_id=key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
        await RevocationEpochRepository(session).bump()
    key_hash = key.key_hash
    on_commit(session, lambda: invalidate(key_hash))
    return key


async def ensure_bootstrap_admin_key(session: AsyncSession) -> IssuedKey | None:
    """Create the operator tenant and a first admin key, unless one exists."""
    tenants = TenantRepository(session)
    tenant = await tenants.get_by_name(BOOTSTRAP_TENANT)
    if tenant is None:
        tenant = await tenants.add(Tenant(name=BOOTSTRAP_TENANT))
    elif await KeyRepository(session).tenant_has_live_admin_key(tenant.id, ADMIN_SCOPE):
        return None
    return await create_key(
        session, tenant_id=tenant.id, name="bootstrap admin", scopes=[ADMIN_SCOPE]
    )
