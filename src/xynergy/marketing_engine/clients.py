"""Calls to the ASO Engine and the AI Routing Engine, through the platform's service client.

Every call carries the caller's identity (an internal token holding a subset of
the caller's scopes), the request id, a timeout and the per-service breaker. A
5xx, a timeout or an open breaker becomes :class:`UpstreamUnavailable` (503-class);
a 4xx from the other service is re-raised with its own status and detail, so a
missing scope or a bad request is reported as what it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.exceptions import UpstreamUnavailable, XynergyError
from xynergy.platform.services import ServiceClient

__all__ = ["AI_ENGINE", "ASO_ENGINE", "DependencyError", "call_json", "generate_text"]

AI_ENGINE = "ai-routing-engine"
ASO_ENGINE = "aso-engine"
_FIRST_ERROR = 400
_FIRST_SERVER_ERROR = 500


class DependencyError(XynergyError):
    """Another service refused the call with a 4xx; its status and detail are kept."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status
        self.code = code


async def call_json(
    services: ServiceClient,
    service: str,
    method: str,
    path: str,
    *,
    caller: AuthContext,
    scopes: Iterable[str],
    json: Any = None,
    params: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
    content: bytes | None = None,
    content_type: str | None = None,
) -> Any:
    """The decoded JSON answer of one call to ``service`` (a JSON or a raw body)."""
    response = await services.request(
        service,
        method,
        path,
        caller=caller,
        scopes=scopes,
        json=json,
        params=params,
        idempotency_key=idempotency_key,
        content=content,
        content_type=content_type,
    )
    if response.status >= _FIRST_SERVER_ERROR:
        # The other service's Retry-After (its database busy or away) is the
        # caller's too: a 503 without one leaves the client guessing when to retry.
        raise UpstreamUnavailable(
            f"The {service} service failed ({response.status}).",
            headers=response.retry_after_headers(),
        )
    if response.status >= _FIRST_ERROR:
        try:
            body = response.json()
            code, detail = str(body.get("error")), str(body.get("detail"))
        except (ValueError, AttributeError):
            code, detail = "dependency_error", f"The {service} service refused the call."
        raise DependencyError(response.status, code, detail)
    return response.json() if response.content else None


async def generate_text(
    services: ServiceClient,
    *,
    caller: AuthContext,
    task: str,
    prompt: str,
    max_tokens: int,
    system: str | None = None,
) -> dict[str, Any]:
    """One ``/api/generate/intelligent`` answer (``text``, ``provider``, ``usage``, ...)."""
    body: dict[str, Any] = {"task": task, "prompt": prompt, "max_tokens": max_tokens}
    if system:
        body["system"] = system
    answer: dict[str, Any] = await call_json(
        services,
        AI_ENGINE,
        "POST",
        "/api/generate/intelligent",
        caller=caller,
        scopes=("ai:generate",),
        json=body,
    )
    return answer
