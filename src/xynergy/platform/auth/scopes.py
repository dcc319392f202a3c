"""The scopes a key can hold. Unknown scopes are refused at key creation so a typo
never silently grants nothing (or, worse, is mistaken for a grant)."""

from __future__ import annotations

__all__ = [
    "ADMIN_SCOPE",
    "KNOWN_SCOPES",
    "OPERATOR_TENANT_NAME",
    "PLATFORM_WIDE_SCOPES",
    "unknown_scopes",
]

# Acts for any tenant: held only by keys of the operator tenant.
ADMIN_SCOPE = "admin"

# The operator tenant, by name: the one ``xynergy bootstrap`` creates. Names are
# unique and never change, and only the operator (CLI or an admin key) can create
# tenants, so a customer cannot take this name.
OPERATOR_TENANT_NAME = "platform"

KNOWN_SCOPES: frozenset[str] = frozenset(
    {
        ADMIN_SCOPE,
        "keys:admin",
        "metrics:read",
        "alerts:write",
        "content:read",
        "content:write",
        "keywords:read",
        "keywords:write",
        "ai:generate",
        "ai:usage",
        "ai:budgets",
        "marketing:research",
        "campaigns:read",
        "campaigns:write",
        "templates:write",
        "analytics:read",
        "assistant:chat",
        "assistant:audit",
        "workflows:read",
        "workflows:write",
        "intake:read",
        "intake:admin",
    }
)


# A route requiring one of these works on the whole platform (tenants, metrics),
# not inside one tenant: an admin key calls it without naming a tenant. On every
# other route an admin key must name the tenant it acts for.
PLATFORM_WIDE_SCOPES: frozenset[str] = frozenset({ADMIN_SCOPE, "metrics:read"})


def unknown_scopes(scopes: set[str] | frozenset[str] | list[str]) -> list[str]:
    """The members of ``scopes`` that are not known scopes, sorted."""
    return sorted(set(scopes) - KNOWN_SCOPES)
