"""The scopes a key can hold. Unknown scopes are refused at key creation so a typo
never silently grants nothing (or, worse, is mistaken for a grant)."""

from __future__ import annotations

__all__ = ["ADMIN_SCOPE", "KNOWN_SCOPES", "unknown_scopes"]

ADMIN_SCOPE = "admin"

KNOWN_SCOPES: frozenset[str] = frozenset(
    {
        ADMIN_SCOPE,
        "keys:admin",
        "metrics:read",
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
        "workflows:read",
        "workflows:write",
        "intake:read",
        "intake:admin",
    }
)


def unknown_scopes(scopes: set[str] | frozenset[str] | list[str]) -> list[str]:
    """The members of ``scopes`` that are not known scopes, sorted."""
    return sorted(set(scopes) - KNOWN_SCOPES)
