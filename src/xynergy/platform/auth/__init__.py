"""Authentication: API keys, internal tokens, scopes and the request's identity."""

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import RequireScopes, require_scopes
from xynergy.platform.auth.keys import generate_key, hash_key, is_well_formed
from xynergy.platform.auth.scopes import ADMIN_SCOPE, KNOWN_SCOPES

__all__ = [
    "ADMIN_SCOPE",
    "KNOWN_SCOPES",
    "AuthContext",
    "RequireScopes",
    "generate_key",
    "hash_key",
    "is_well_formed",
    "require_scopes",
]
