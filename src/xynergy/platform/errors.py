"""Rendering every error as ``{"error", "detail", "request_id"}`` (or the shape the
matched route declares, see ``error_shapes``); no stack traces out."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from xynergy.platform.config import Settings
from xynergy.platform.db.busy import database_busy, database_unavailable
from xynergy.platform.error_shapes import error_shape_for
from xynergy.platform.exceptions import RedisUnavailable, XynergyError
from xynergy.platform.logging import get_logger
from xynergy.platform.tracing import current_request_id

__all__ = [
    "describe_validation_errors",
    "error_body",
    "error_response",
    "install_error_handlers",
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_MAX_REPORTED_FIELD_ERRORS = 10

log = get_logger("xynergy.errors")


def error_body(code: str, detail: str) -> bytes:
    """The JSON bytes of an error body for the current request."""
    return json.dumps(
        {"error": code, "detail": detail, "request_id": current_request_id()},
        separators=(",", ":"),
    ).encode()


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """A JSON error response in the platform's one shape."""
    return Response(
        error_body(code, detail),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> tuple[int, str, str]:
    """(status, code, detail) for pydantic errors whose ``loc`` starts where the
    field was found (``body``, ``query``...): 400 for a body that is not JSON, else
    422 naming at most ten fields."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return 400, "malformed_json", "The request body is not valid JSON."
    parts = []
    for error in errors[:_MAX_REPORTED_FIELD_ERRORS]:
        location = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}")
    if len(errors) > _MAX_REPORTED_FIELD_ERRORS:
        parts.append(f"(and {len(errors) - _MAX_REPORTED_FIELD_ERRORS} more)")
    return 422, "validation_failed", "; ".join(parts)


def _describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    return describe_validation_errors(exc.errors())


def _shaped_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    # The route's shape: authentication, scope and rate-limit errors are raised
    # inside the matched route's handler, so the route is in scope for them too.
    shape = error_shape_for(request.scope)
    return Response(
        shape.render(status, code, detail, current_request_id()),
        status_code=status,
        media_type="application/json",
        headers=dict(headers) if headers else None,
    )


async def _on_platform_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, XynergyError)  # noqa: S101 - registered for this type only
    return _shaped_response(request, exc.status_code, exc.code, exc.detail, exc.headers)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this type only
    status, code, detail = _describe_validation(exc)
    return _shaped_response(request, status, code, detail)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for this type only
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return _shaped_response(request, exc.status_code, code, str(exc.detail), exc.headers)


def _database_error_handler(
    settings: Settings,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def on_database_error(request: Request, exc: Exception) -> Response:
        error = database_busy(
            exc, retry_after_seconds=settings.database_busy_retry_after_seconds
        ) or database_unavailable(
            exc, retry_after_seconds=settings.database_unavailable_retry_after_seconds
        )
        if error is None:
            # Any other database error is a bug: the last-resort 500 logs it.
            raise exc
        # The driver message only: the statement and its parameters stay out of logs.
        driver_error = getattr(exc, "orig", exc)
        log.warning(f"request.{error.code}", path=request.url.path, error=str(driver_error))
        return _shaped_response(request, error.status_code, error.code, error.detail, error.headers)

    return on_database_error


def _redis_error_handler(
    retry_after_seconds: int,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    # Caches, breakers and rate limits fall back to local state on their own; a
    # Redis error that still reaches here comes from a use that cannot (or a new
    # one that forgot to): a 503 the client may retry, not a 500.
    async def on_redis_error(request: Request, exc: Exception) -> Response:
        log.warning("request.redis_unavailable", path=request.url.path, error=repr(exc))
        error = RedisUnavailable(headers={"Retry-After": str(retry_after_seconds)})
        return _shaped_response(request, error.status_code, error.code, error.detail, error.headers)

    return on_redis_error


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    """Register the platform's handlers on ``app``."""
    app.add_exception_handler(XynergyError, _on_platform_error)
    # Lock contention or a lost database, wherever it surfaces (a statement, or the
    # commit the session dependency runs after the endpoint), is a 503 the client
    # may retry.
    on_database_error = _database_error_handler(settings)
    app.add_exception_handler(DBAPIError, on_database_error)
    app.add_exception_handler(PoolTimeout, on_database_error)
    on_redis_error = _redis_error_handler(settings.redis_unavailable_retry_after_seconds)
    app.add_exception_handler(RedisConnectionError, on_redis_error)
    app.add_exception_handler(RedisTimeoutError, on_redis_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
