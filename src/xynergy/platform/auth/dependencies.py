"""Typed auth dependencies: ``Annotated[AuthContext, Depends(RequireScopes(...))]``."""

from __future__ import annotations

from fastapi import Request

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.exceptions import Forbidden, Unauthorized

__all__ = ["RequireScopes", "require_scopes"]


class RequireScopes:
    """Dependency: the request's AuthContext, if its key holds every named scope."""

    def __init__(self, *scopes: str) -> None:
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if not scopes or unknown:
            raise ValueError(f"RequireScopes needs known scopes, got unknown {unknown}")
        self.scopes = frozenset(scopes)

    # async: a plain def would be sent to the thread pool on every request.
    async def __call__(self, request: Request) -> AuthContext:
        auth: AuthContext | None = getattr(request.state, "auth", None)
        if auth is None:
            # Only reachable if a public route asks for scopes: a programming error,
            # answered as "no key" rather than served.
            raise Unauthorized()
        self.check(auth)
        return auth

    def check(self, auth: AuthContext) -> None:
        """Raise Forbidden unless ``auth`` holds every required scope."""
        if not auth.allows(*self.scopes):
            missing = ", ".join(sorted(self.scopes - auth.scopes))
            raise Forbidden(f"This key lacks the scope(s): {missing}.")

    def __repr__(self) -> str:
        return f"RequireScopes({', '.join(sorted(self.scopes))})"


def require_scopes(*scopes: str) -> RequireScopes:
    """Dependency requiring ``scopes``; use as
    ``TenantKey = Annotated[AuthContext, Depends(require_scopes("content:write"))]``."""
    return RequireScopes(*scopes)
