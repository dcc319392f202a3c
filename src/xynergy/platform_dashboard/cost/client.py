"""Spend reads from the AI Routing Engine, on the caller's behalf.

Each call carries an internal token minted from the caller's identity with the
``metrics:read`` scope only, so the engine decides visibility exactly as for the
caller's own key: an operator sees the platform (or picks a tenant), a tenant
only itself. The engine's refusals come back as the same status and detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import (
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    UpstreamUnavailable,
    ValidationFailed,
    XynergyError,
)
from xynergy.platform.services import ServiceClient, ServiceResponse

__all__ = ["AI_ENGINE", "read_spend"]

AI_ENGINE = "ai-routing-engine"
_SCOPES = ("metrics:read",)
_REFUSALS: dict[int, type[XynergyError]] = {
    400: BadRequest,
    403: Forbidden,
    404: NotFound,
    422: ValidationFailed,
    429: RateLimited,
}
_FIRST_ERROR = 400
_FIRST_SERVER_ERROR = 500


def _refusal(response: ServiceResponse) -> XynergyError:
    if response.status >= _FIRST_SERVER_ERROR:
        return UpstreamUnavailable(f"The AI Routing Engine failed ({response.status}).")
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    error = _REFUSALS.get(response.status, BadRequest)
    return error(str(detail) if detail else None, headers=response.retry_after_headers())


async def read_spend(
    services: ServiceClient, *, caller: AuthContext, path: str, params: Mapping[str, str]
) -> Any:
    """The engine's JSON answer to ``GET path?params``; its refusal raised."""
    response = await services.request(
        AI_ENGINE, "GET", path, caller=caller, scopes=_SCOPES, params=params
    )
    if response.status >= _FIRST_ERROR:
        raise _refusal(response)
    try:
        return response.json()
    except ValueError as exc:
        raise UpstreamUnavailable("The AI Routing Engine answered with no JSON.") from exc
