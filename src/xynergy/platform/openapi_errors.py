"""Which errors one route can answer, derived from what the route is.

Each :class:`ErrorCause` is one reason a route answers an error: its status, its
``error`` code, a sentence for the reader, and the headers that come with it.
:func:`error_causes` reads them off a :class:`SecureRoute` (public or not, rate
class, scopes, parameters, body) and its generated OpenAPI operation; errors that
depend on an endpoint's own logic (a conflict, a spent budget, an upstream) are
declared on the endpoint with :func:`xynergy.platform.routing.raises`. Nothing
here is written per endpoint: a new route gets its contract from its properties.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from xynergy.platform.db.session import get_session
from xynergy.platform.exceptions import (
    BadRequest,
    BudgetExceeded,
    DatabaseBusy,
    DatabaseUnavailable,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RedisUnavailable,
    Unauthorized,
    ValidationFailed,
    XynergyError,
)
from xynergy.platform.idempotency import (
    IdempotencyInProgress,
    IdempotencyKeyInvalid,
    IdempotencyKeyReused,
    IdempotencyResponseNotStored,
)
from xynergy.platform.routing import ACTING_TENANT_HEADER, SecureRoute, acts_in_one_tenant

__all__ = ["RATE_LIMIT_HEADERS", "ErrorCause", "error_causes"]

# Every 429 the rate limiter answers carries these (platform/rate_limit.py).
RATE_LIMIT_HEADERS = (
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)
# The platform's pagination parameter: a cursor it did not issue is a 400.
_CURSOR_PARAMETER = "cursor"
_MALFORMED_JSON = "malformed_json"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class ErrorCause:
    """One reason a route answers an error."""

    status: int
    code: str
    description: str
    # header name -> whether every response of this cause carries it
    headers: Mapping[str, bool] = field(default_factory=dict)

    @classmethod
    def of(cls, error: type[XynergyError], description: str | None = None) -> ErrorCause:
        """The cause an error class stands for (its status and code)."""
        return cls(
            error.status_code,
            error.code,
            description or error.default_detail,
            _headers_of(error),
        )


def _headers_of(error: type[XynergyError]) -> dict[str, bool]:
    if issubclass(error, Unauthorized):
        return {"WWW-Authenticate": True}
    if issubclass(error, (RateLimited, IdempotencyInProgress)):
        return {"Retry-After": True}
    if issubclass(error, (DatabaseBusy, DatabaseUnavailable, RedisUnavailable)):
        return {"Retry-After": True}
    return {}


def _rate_limited(description: str) -> ErrorCause:
    return ErrorCause(
        RateLimited.status_code,
        RateLimited.code,
        description,
        dict.fromkeys(RATE_LIMIT_HEADERS, True),
    )


def _parameters(operation: Mapping[str, Any], where: str) -> list[str]:
    return [
        parameter["name"]
        for parameter in operation.get("parameters", ())
        if parameter.get("in") == where and parameter.get("name") != ACTING_TENANT_HEADER
    ]


def _uses_database(route: SecureRoute) -> bool:
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if dependant.call is get_session:
            return True
        stack.extend(dependant.dependencies)
    return False


def _request_causes(route: SecureRoute, operation: Mapping[str, Any]) -> Iterator[ErrorCause]:
    """What the request itself can get wrong: URL text, parameters, body."""
    yield ErrorCause.of(
        ValidationFailed, "A path or query value holds a NUL character or bytes that are not UTF-8."
    )
    body = operation.get("requestBody")
    if operation.get("parameters") or body or route.body_field is not None:
        yield ErrorCause.of(
            ValidationFailed, "A parameter or body field is missing, out of bounds or malformed."
        )
    if _CURSOR_PARAMETER in _parameters(operation, "query"):
        yield ErrorCause.of(BadRequest, "The cursor is not one this API issued.")
    json_body = body is not None and _JSON in body.get("content", {})
    if json_body or (route.body_field is not None and not route.accepts_uploads):
        yield ErrorCause(400, _MALFORMED_JSON, "The body is not valid JSON.")
    if route.body_field is not None and not route.accepts_uploads:
        # FastAPI's own answer when it cannot read a body it parses.
        yield ErrorCause.of(BadRequest, "The body could not be read.")
    if body is not None or route.body_field is not None or route.accepts_uploads:
        yield ErrorCause.of(PayloadTooLarge, "The body is larger than this route accepts.")
    if _parameters(operation, "path"):
        yield ErrorCause.of(
            NotFound, "Nothing with this id exists (or it belongs to another tenant)."
        )


def _caller_causes(route: SecureRoute, limits: Mapping[str, str]) -> Iterator[ErrorCause]:
    """What the caller can get wrong: key, scopes, tenant, pace."""
    if not route.is_public:
        yield ErrorCause.of(Unauthorized, "No key, or a key that is unknown, revoked or expired.")
        yield _rate_limited("Too many failed authentications from this address.")
        if route.required_scopes:
            scopes = ", ".join(sorted(route.required_scopes))
            yield ErrorCause.of(Forbidden, f"The key lacks a required scope ({scopes}).")
        yield ErrorCause.of(
            Forbidden, f"Only an admin key may act for another tenant ({ACTING_TENANT_HEADER})."
        )
        yield ErrorCause.of(NotFound, f"{ACTING_TENANT_HEADER} names no tenant.")
        if acts_in_one_tenant(route.required_scopes):
            yield ErrorCause.of(
                BadRequest,
                f"An admin key did not name the tenant it acts for ({ACTING_TENANT_HEADER}).",
            )
        yield ErrorCause.of(DatabaseBusy, "The key store is busy; retry after Retry-After.")
        yield ErrorCause.of(
            DatabaseUnavailable, "The key store is unreachable; retry after Retry-After."
        )
    if route.rate_class is not None:
        per = "client address" if route.is_public else "key"
        limit = limits.get(route.rate_class, "?")
        yield _rate_limited(f"The `{route.rate_class}` rate limit ({limit} per {per}) is used up.")


def _idempotency_causes(route: SecureRoute) -> Iterator[ErrorCause]:
    """What an Idempotency-Key can meet (``xynergy.platform.idempotency``)."""
    if not route.honours_idempotency:
        return
    yield ErrorCause.of(IdempotencyKeyInvalid)
    yield ErrorCause.of(IdempotencyInProgress)
    yield ErrorCause.of(IdempotencyResponseNotStored)
    yield ErrorCause.of(IdempotencyKeyReused)
    # The key's record is kept in the database, whatever the endpoint uses.
    yield ErrorCause.of(DatabaseBusy)
    yield ErrorCause.of(DatabaseUnavailable)


def error_causes(
    route: SecureRoute, operation: Mapping[str, Any], limits: Mapping[str, str]
) -> list[ErrorCause]:
    """Every error ``route`` can answer, with ``operation`` its generated OpenAPI.

    Args:
        route: The route.
        operation: FastAPI's OpenAPI operation of one of its methods.
        limits: ``settings.rate_limits`` (to name the limit in the text).
    """
    causes = [
        *_request_causes(route, operation),
        *_caller_causes(route, limits),
        *_idempotency_causes(route),
    ]
    if _uses_database(route):
        causes.append(ErrorCause.of(DatabaseBusy))
        causes.append(ErrorCause.of(DatabaseUnavailable))
    if BudgetExceeded in route.raises:
        # Budget counters are reserved in Redis; with Redis unreachable nothing is
        # reserved and the call is refused rather than run unbudgeted.
        causes.append(
            ErrorCause.of(
                RedisUnavailable, "The budget counters are unreachable; nothing was reserved."
            )
        )
    causes.extend(ErrorCause.of(error) for error in route.raises)
    unique: dict[tuple[int, str, str], ErrorCause] = {}
    for cause in causes:
        unique.setdefault((cause.status, cause.code, cause.description), cause)
    return list(unique.values())
