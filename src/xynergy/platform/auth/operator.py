"""Who sees the whole platform, and which tenant a platform-wide read covers.

Operators are admin keys and every key of the operator tenant (by name, see
``scopes.OPERATOR_TENANT_NAME``); they read platform-wide figures (traffic, spend,
alerts) and may pick one tenant. Any other caller reads its own tenant only, and
naming another answers 404 as every cross-tenant access does.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.exceptions import NotFound
from xynergy.platform.tenancy.repository import TenantRepository

__all__ = ["is_operator", "visible_tenant"]


async def is_operator(session: AsyncSession, auth: AuthContext) -> bool:
    """Whether ``auth`` sees the whole platform: admin, or a key of the operator tenant."""
    if auth.is_admin:
        return True
    tenant = await TenantRepository(session).get(auth.key_tenant_id)
    return tenant is not None and tenant.name == OPERATOR_TENANT_NAME


async def visible_tenant(
    session: AsyncSession, auth: AuthContext, asked: str | None, *, operator: bool | None = None
) -> str | None:
    """The tenant a platform-wide read covers for ``auth``; None: the whole platform.

    ``operator`` may be passed when the caller already knows it (saves a read).

    Raises:
        NotFound: a tenant's key asked for another tenant, or no such tenant exists.
    """
    if operator is None:
        operator = await is_operator(session, auth)
    if not operator:
        if asked is not None and asked != auth.tenant_id:
            raise NotFound("No such tenant.")
        return auth.tenant_id
    if asked is None:
        # An admin key acting for a tenant (X-Xynergy-Tenant) reads that tenant.
        return auth.tenant_id if auth.tenant_id != auth.key_tenant_id else None
    if await TenantRepository(session).get(asked) is None:
        raise NotFound("No such tenant.")
    return asked
