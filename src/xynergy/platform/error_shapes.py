"""How an error body is written, per route: the platform's shape, or another
(e.g. OpenAI's under the AI gateway's ``/v1``) that a client SDK expects.

A route carries one :class:`ErrorShape` (``SecureRoute.error_shape``, set with
``xynergy.platform.routing.shaped_errors``). The error handlers render with it,
and the OpenAPI generator declares its ``schema`` for every error response of the
route, so the published contract and the bytes on the wire come from one object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.types import Scope

__all__ = ["PLATFORM_ERRORS", "ErrorShape", "error_shape_for", "shape_errors_under"]

# app.state attribute: (path prefix, shape) pairs for requests no route matched.
_PREFIXES_STATE = "error_shape_prefixes"

# (status, code, detail, request_id) -> body bytes
RenderError = Callable[[int, str, str, str | None], bytes]


@dataclass(frozen=True, slots=True)
class ErrorShape:
    """One way of writing error bodies, with its JSON schema for OpenAPI."""

    name: str  # the OpenAPI component name of the body schema
    render: RenderError
    schema: dict[str, Any] = field(hash=False, compare=False)


def _render_platform(_status: int, code: str, detail: str, request_id: str | None) -> bytes:
    return json.dumps(
        {"error": code, "detail": detail, "request_id": request_id}, separators=(",", ":")
    ).encode()


PLATFORM_ERRORS = ErrorShape(
    name="Error",
    render=_render_platform,
    schema={
        "type": "object",
        "title": "Error",
        "description": "Every error the platform answers, whatever the status.",
        "required": ["error", "detail", "request_id"],
        "properties": {
            "error": {
                "type": "string",
                "description": "A stable machine-readable code, e.g. `validation_failed`.",
            },
            "detail": {"type": "string", "description": "What went wrong, for a person."},
            "request_id": {
                "type": ["string", "null"],
                "description": "The request's id, also in the `X-Request-ID` header.",
            },
        },
    },
)


def shape_errors_under(app: Starlette, prefix: str, shape: ErrorShape) -> None:
    """Render ``app``'s errors for every path under ``prefix`` in ``shape``, also when
    no route matched (404, and the 413 of the body limit, which answers before
    routing). Every route under ``prefix`` must already carry ``shape``
    (``shaped_errors``): one path space, one shape, checked at start-up."""
    prefix = prefix.rstrip("/")
    for route in app.routes:
        path = getattr(route, "path", "")
        declared = getattr(route, "error_shape", None)
        if declared is not None and _under(path, prefix) and declared is not shape:
            raise ValueError(f"route {path} is under {prefix} but renders {declared.name} errors")
    registered: tuple[tuple[str, ErrorShape], ...] = getattr(app.state, _PREFIXES_STATE, ())
    setattr(app.state, _PREFIXES_STATE, (*registered, (prefix, shape)))


def error_shape_for(scope: Scope) -> ErrorShape:
    """The shape of an error answered to this request: its matched route's (also
    for a 405, where Starlette keeps the route that matched the path), else the one
    registered for its path prefix, else the platform's."""
    declared = getattr(scope.get("route"), "error_shape", None)
    if isinstance(declared, ErrorShape):
        return declared
    app = scope.get("app")
    prefixes: tuple[tuple[str, ErrorShape], ...] = getattr(
        getattr(app, "state", None), _PREFIXES_STATE, ()
    )
    if prefixes:
        path = _route_path(scope)
        for prefix, shape in prefixes:
            if _under(path, prefix):
                return shape
    return PLATFORM_ERRORS


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _route_path(scope: Scope) -> str:
    # The path inside the app: a mount prefix (all-in-one mode) is in root_path.
    path: str = scope.get("path", "")
    root_path: str = scope.get("root_path", "")
    return path[len(root_path) :] if root_path and path.startswith(root_path) else path
