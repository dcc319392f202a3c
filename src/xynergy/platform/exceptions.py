"""The platform's error tree; every class carries the HTTP status it renders as.

::

    XynergyError (500 internal_error)
    ├── BadRequest (400 bad_request)
    │   └── ValidationFailed (422 validation_failed)
    ├── Unauthorized (401 unauthorized)
    ├── Forbidden (403 forbidden)
    ├── NotFound (404 not_found)
    ├── Conflict (409 conflict)
    ├── PayloadTooLarge (413 payload_too_large)
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── RateLimited (429 rate_limited)
    ├── BudgetExceeded (402 budget_exceeded)
    ├── UpstreamUnavailable (503 upstream_unavailable)
    │   ├── CircuitOpen (503 circuit_open)
    │   ├── DatabaseBusy (503 database_busy)
    │   ├── DatabaseUnavailable (503 database_unavailable)
    │   └── RedisUnavailable (503 redis_unavailable)
    └── UpstreamTimeout (504 upstream_timeout)

Services raise these, never ``HTTPException``; one handler renders them as
``{"error": code, "detail": message, "request_id": id}``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "BadRequest",
    "BudgetExceeded",
    "CircuitOpen",
    "Conflict",
    "DatabaseBusy",
    "DatabaseUnavailable",
    "Forbidden",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "RedisUnavailable",
    "Unauthorized",
    "UpstreamTimeout",
    "UnsupportedMediaType",
    "UpstreamUnavailable",
    "ValidationFailed",
    "XynergyError",
]


class XynergyError(Exception):
    """Base of every error a client may see; the message is safe to show."""

    status_code: int = 500
    code: str = "internal_error"
    default_detail: str = "The server could not complete the request."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        self.detail = detail or self.default_detail
        self.headers = dict(headers or {})
        super().__init__(self.detail)


class BadRequest(XynergyError):
    status_code = 400
    code = "bad_request"
    default_detail = "The request is malformed."


class ValidationFailed(BadRequest):
    status_code = 422
    code = "validation_failed"
    default_detail = "The request did not pass validation."


class Unauthorized(XynergyError):
    status_code = 401
    code = "unauthorized"
    default_detail = "A valid API key is required."

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer", **(headers or {})})


class Forbidden(XynergyError):
    status_code = 403
    code = "forbidden"
    default_detail = "This key is not allowed to do that."


class NotFound(XynergyError):
    status_code = 404
    code = "not_found"
    default_detail = "No such resource."


class Conflict(XynergyError):
    status_code = 409
    code = "conflict"
    default_detail = "The request conflicts with the current state."


class PayloadTooLarge(XynergyError):
    status_code = 413
    code = "payload_too_large"
    default_detail = "The request body is too large."


class UnsupportedMediaType(XynergyError):
    status_code = 415
    code = "unsupported_media_type"
    default_detail = "The request body's content type is not accepted here."


class RateLimited(XynergyError):
    status_code = 429
    code = "rate_limited"
    default_detail = "Too many requests; retry after the time given in Retry-After."


class BudgetExceeded(XynergyError):
    status_code = 402
    code = "budget_exceeded"
    default_detail = "The tenant's AI budget for this period is spent."


class UpstreamUnavailable(XynergyError):
    status_code = 503
    code = "upstream_unavailable"
    default_detail = "A service this request depends on is unavailable."


class CircuitOpen(UpstreamUnavailable):
    code = "circuit_open"
    default_detail = "A service this request depends on is failing; not calling it for now."


class DatabaseBusy(UpstreamUnavailable):
    """Other writers held the database longer than the configured wait; nothing was written."""

    code = "database_busy"
    default_detail = (
        "The database is busy with other writes; nothing was written. "
        "Retry after the time given in Retry-After."
    )


class DatabaseUnavailable(UpstreamUnavailable):
    """The database could not be reached, refused the connection or dropped it."""

    code = "database_unavailable"
    default_detail = (
        "The database is unreachable; the request did not complete. "
        "Retry after the time given in Retry-After."
    )


class RedisUnavailable(UpstreamUnavailable):
    """Redis could not be reached where shared state cannot be replaced by local state."""

    code = "redis_unavailable"
    default_detail = (
        "Shared state storage (Redis) is unreachable; the request did not complete. "
        "Retry after the time given in Retry-After."
    )


class UpstreamTimeout(XynergyError):
    status_code = 504
    code = "upstream_timeout"
    default_detail = "A service this request depends on did not answer in time."
