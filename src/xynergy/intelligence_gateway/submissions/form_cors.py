"""CORS answered per form: an origin the form lists gets itself back, any other nothing."""

from __future__ import annotations

from fastapi import Request, Response

from xynergy.intelligence_gateway.models import IntakeForm
from xynergy.platform.exceptions import Forbidden

__all__ = ["cors_headers", "preflight"]

_ALLOWED_HEADERS = "Content-Type, Idempotency-Key, X-Request-ID"
_EXPOSED_HEADERS = (
    "X-Request-ID, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
    "RateLimit-Policy"
)


def cors_headers(form: IntakeForm, request: Request) -> dict[str, str]:
    headers = {"Vary": "Origin"}
    origin = request.headers.get("origin")
    if origin is not None and origin in form.allowed_origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = _EXPOSED_HEADERS
    return headers


def preflight(request: Request, form: IntakeForm, *, method: str) -> Response:
    """The answer to a preflight for ``form``: 204 for a listed origin, else 403 bare."""
    origin = request.headers.get("origin")
    if origin is None or origin not in form.allowed_origins:
        raise Forbidden("This origin may not use this form.", headers={"Vary": "Origin"})
    max_age = request.app.state.platform.settings.cors_max_age_seconds
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": method,
            "Access-Control-Allow-Headers": _ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(max_age),
            "Vary": "Origin",
        },
    )
