"""Who is calling: the authenticated identity a request acts as."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from xynergy.platform.auth.scopes import ADMIN_SCOPE

__all__ = ["AuthContext"]


@dataclass(frozen=True, slots=True)
class AuthContext:
    """The tenant, key and scopes a request acts with.

    ``tenant_id`` is where the request's data lives. It comes from the key; only a
    key holding the ``admin`` scope may act for another tenant, and then
    ``key_tenant_id`` still names the key's own tenant.
    """

    tenant_id: str
    key_id: str
    key_tenant_id: str
    scopes: frozenset[str]
    via: Literal["key", "internal"] = "key"

    @property
    def is_admin(self) -> bool:
        """Whether the key may do anything, for any tenant."""
        return ADMIN_SCOPE in self.scopes

    def allows(self, *required: str) -> bool:
        """Whether every scope in ``required`` is granted (admin grants all)."""
        return self.is_admin or set(required) <= self.scopes

    def acting_for(self, tenant_id: str) -> AuthContext:
        """The same caller acting for ``tenant_id`` (admin only; checked by the caller)."""
        return replace(self, tenant_id=tenant_id)
