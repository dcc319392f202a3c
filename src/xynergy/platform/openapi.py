"""The OpenAPI contract of a service, derived from its routes.

FastAPI documents what a route accepts and what it answers on success; it
declares one error (a 422 whose ``detail`` is an array) that the platform never
answers. :func:`install_contract` makes ``app.openapi()`` publish instead, per
operation:

* the errors the route can really answer (``xynergy.platform.openapi_errors``),
  each in the route's own error shape (``SecureRoute.error_shape``, a component
  named after the shape), with the possible ``error`` codes, an example per code
  and the headers that come with them (``WWW-Authenticate``, ``Retry-After``,
  ``RateLimit-*``, ``X-Request-ID``);
* how to authenticate (``components.securitySchemes``; ``security: []`` when
  public), the optional ``X-Xynergy-Tenant`` header of admin keys;
* the scopes and rate class, as ``x-xynergy-scopes`` / ``x-xynergy-rate-class``
  and as a sentence at the end of the description;
* the bounds that are settings, known only when the app is built
  (``xynergy.platform.schema_bounds``: a page size's ``maximum`` is
  ``settings.page_size_max``);
* links from what creates or lists a resource to what works on one
  (``xynergy.platform.openapi_links``).

FastAPI still generates and caches the document; this only completes each
newly generated one, once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from copy import deepcopy
from typing import Any

from fastapi import FastAPI

from xynergy.platform.config import Settings
from xynergy.platform.error_shapes import ErrorShape
from xynergy.platform.idempotency_openapi import declare_idempotency
from xynergy.platform.openapi_errors import ErrorCause, error_causes
from xynergy.platform.openapi_links import add_resource_links
from xynergy.platform.routing import ACTING_TENANT_HEADER, SecureRoute
from xynergy.platform.schema_bounds import apply_setting_bounds
from xynergy.platform.web_sessions.cookies import SESSION_COOKIE
from xynergy.platform.web_sessions.csrf import CSRF_HEADER

__all__ = [
    "API_KEY_SECURITY",
    "OPERATION_SECURITY",
    "SESSION_COOKIE_SECURITY",
    "describe_contract",
    "install_contract",
]

API_KEY_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]
SESSION_COOKIE_SECURITY: list[dict[str, list[str]]] = [{"SessionCookie": []}]
# Any one of them authenticates a non-public operation (routing.authenticate: an
# explicit key wins over the cookie).
OPERATION_SECURITY = [*API_KEY_SECURITY, *SESSION_COOKIE_SECURITY]
_SECURITY_SCHEMES = {
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key as a bearer token: `Authorization: Bearer <key>`.",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key in the `X-API-Key` header.",
    },
    "SessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "A browser session: `POST /session` with an API key sets the HttpOnly, "
        f"SameSite=Strict `{SESSION_COOKIE}` cookie, which then stands for the key. Unsafe "
        f"methods (POST, PUT, PATCH, DELETE) also need the session's `{CSRF_HEADER}` header "
        "and a same-origin `Origin`.",
    },
}
_ACTING_TENANT_PARAMETER = {
    "name": ACTING_TENANT_HEADER,
    "in": "header",
    "required": False,
    "description": "Admin keys only: the id of the tenant to act for. Required with an admin "
    "key on routes that work on one tenant's data; a non-admin key sending another "
    "tenant's id gets 403, an id of no tenant 404.",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
# FastAPI's default 422, which the platform never answers.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_FASTAPI_VALIDATION_REF = "#/components/schemas/HTTPValidationError"
_FASTAPI_DESCRIPTIONS = frozenset(
    {"Validation Error", "Successful Response", "Additional Response"}
)
_HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {"description": "The request's id.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}},
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RateLimit-Limit": {
        "description": "Requests allowed per window.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RateLimit-Remaining": {
        "description": "Requests left in the window.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RateLimit-Reset": {
        "description": "Seconds until the window resets.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "RateLimit-Policy": {
        "description": "`<limit>;w=<window seconds>`.",
        "schema": {"type": "string"},
    },
}
_EXAMPLE_REQUEST_ID = "3f2c9a7e5b1d4c8f9e0a1b2c3d4e5f60"
# A code no error uses: where it lands in a rendered body is where the shape puts codes.
_CODE_PROBE = "xynergy-openapi-code-probe"
_JSON = "application/json"


def install_contract(app: FastAPI, rate_limits: Mapping[str, str], *, settings: Settings) -> None:
    """Make ``app.openapi()`` publish the platform's contract (FastAPI keeps caching it).

    ``settings`` (the platform's) and the service objects on ``app.state`` give
    the values of the schema bounds that are settings.
    """
    generate_fastapi_document = app.openapi
    described: list[dict[str, Any]] = []

    def setting(name: str) -> Any:
        owner, _, attribute = name.rpartition(".")
        return getattr(getattr(app.state, owner) if owner else settings, attribute)

    def openapi() -> dict[str, Any]:
        document = generate_fastapi_document()
        # FastAPI hands back its cached document until the routes change.
        if not described or described[0] is not document:
            describe_contract(document, app.routes, rate_limits, setting=setting)
            described[:] = [document]
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def describe_contract(
    document: dict[str, Any],
    routes: Iterable[Any],
    rate_limits: Mapping[str, str],
    *,
    setting: Callable[[str], Any],
) -> None:
    """Complete FastAPI's ``document`` of ``routes`` in place (see the module docstring).

    ``setting`` gives the value of a setting named by a schema bound.
    """
    # Imported here: app.py imports this module to install it.
    from xynergy.platform.app import walk_routes

    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    components["securitySchemes"] = deepcopy(_SECURITY_SCHEMES)
    for route in walk_routes(routes):
        if not isinstance(route, SecureRoute) or not route.include_in_schema:
            continue
        path_item = document.get("paths", {}).get(route.path_format, {})
        for method in sorted(route.methods or ()):
            operation = path_item.get(method.lower())
            if operation is not None:
                _register_shape(schemas, route.error_shape)
                _describe_operation(operation, route, rate_limits)
    apply_setting_bounds(document, setting)
    add_resource_links(document)
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        if f'"#/components/schemas/{name}"' not in json.dumps(document):
            schemas.pop(name, None)


def _register_shape(schemas: dict[str, Any], shape: ErrorShape) -> None:
    present = schemas.get(shape.name)
    if present is None:
        schemas[shape.name] = deepcopy(shape.schema)
    elif present != shape.schema:
        raise RuntimeError(f"two different schemas are both named {shape.name!r}")


def _describe_operation(
    operation: dict[str, Any], route: SecureRoute, rate_limits: Mapping[str, str]
) -> None:
    causes = error_causes(route, operation, rate_limits)
    operation["security"] = [] if route.is_public else deepcopy(OPERATION_SECURITY)
    operation["x-xynergy-scopes"] = sorted(route.required_scopes)
    if route.rate_class is not None:
        operation["x-xynergy-rate-class"] = {
            "name": route.rate_class,
            "limit": rate_limits[route.rate_class],
            "per": "client address" if route.is_public else "key",
        }
    sentence = _access_sentence(route, rate_limits)
    described = operation.get("description")
    operation["description"] = f"{described}\n\n{sentence}" if described else sentence
    if not route.is_public:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == ACTING_TENANT_HEADER for p in parameters):
            parameters.append(deepcopy(_ACTING_TENANT_PARAMETER))
    if route.honours_idempotency:
        declare_idempotency(operation)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    by_status: dict[int, list[ErrorCause]] = {}
    for cause in causes:
        by_status.setdefault(cause.status, []).append(cause)
    for status in sorted(by_status):
        declared = responses.get(str(status))
        responses[str(status)] = _error_response(
            route.error_shape, status, by_status[status], declared
        )
    operation["responses"] = dict(sorted(responses.items()))


def _access_sentence(route: SecureRoute, rate_limits: Mapping[str, str]) -> str:
    scopes = [f"`{scope}`" for scope in sorted(route.required_scopes)]
    if route.is_public:
        access = "Public: no API key needed."
    elif not scopes:
        access = "Requires an API key."
    elif len(scopes) == 1:
        access = f"Requires scope {scopes[0]}."
    else:
        access = f"Requires scopes {', '.join(scopes[:-1])} and {scopes[-1]}."
    if route.rate_class is None:
        return f"{access} Not rate limited."
    per = "client address" if route.is_public else "key"
    limit = rate_limits[route.rate_class]
    return f"{access} Rate class `{route.rate_class}` ({limit} per {per})."


def _error_response(
    shape: ErrorShape, status: int, causes: list[ErrorCause], declared: Mapping[str, Any] | None
) -> dict[str, Any]:
    codes = list(dict.fromkeys(cause.code for cause in causes))
    schema = _coded_schema(shape, status, codes)
    declared_schema = ((declared or {}).get("content") or {}).get(_JSON, {}).get("schema")
    if declared_schema and declared_schema.get("$ref") != _FASTAPI_VALIDATION_REF:
        # The endpoint answers a richer body too (e.g. an import's rejected rows).
        schema = {"anyOf": [declared_schema, schema]}
    examples: dict[str, Any] = {}
    for cause in causes:
        if cause.code not in examples:
            body = shape.render(status, cause.code, cause.description, _EXAMPLE_REQUEST_ID)
            examples[cause.code] = {"summary": cause.description, "value": json.loads(body)}
    lines = [f"- `{cause.code}`: {cause.description}" for cause in causes]
    own = (declared or {}).get("description")
    if own and own not in _FASTAPI_DESCRIPTIONS:
        lines.insert(0, own)
    return {
        "description": "\n".join(lines),
        "headers": _headers(causes),
        "content": {_JSON: {"schema": schema, "examples": examples}},
    }


def _headers(causes: list[ErrorCause]) -> dict[str, Any]:
    names = dict.fromkeys(name for cause in causes for name in cause.headers)
    headers = {"X-Request-ID": {**_HEADER_SCHEMAS["X-Request-ID"], "required": True}}
    for name in names:
        required = all(cause.headers.get(name, False) for cause in causes)
        headers[name] = {**deepcopy(_HEADER_SCHEMAS[name]), "required": required}
    return headers


def _coded_schema(shape: ErrorShape, status: int, codes: list[str]) -> dict[str, Any]:
    """The shape's schema, narrowed to ``codes`` where the shape writes its code."""
    reference = {"$ref": f"#/components/schemas/{shape.name}"}
    location = _code_location(shape, status)
    if location is None:
        return reference
    values: list[Any] = []
    for code in codes:
        value = _at(json.loads(shape.render(status, code, "", None)), location)
        if value is _MISSING:
            return reference
        if value not in values:
            values.append(value)
    narrowed: dict[str, Any] = {"enum": values}
    for key in reversed(location):
        narrowed = {"properties": {key: narrowed}}
    return {"allOf": [reference, narrowed]}


_MISSING = object()


def _at(document: Any, location: tuple[str, ...]) -> Any:
    for key in location:
        if not isinstance(document, dict) or key not in document:
            return _MISSING
        document = document[key]
    return document


def _code_location(shape: ErrorShape, status: int) -> tuple[str, ...] | None:
    rendered = json.loads(shape.render(status, _CODE_PROBE, "", None))
    stack: list[tuple[tuple[str, ...], Any]] = [((), rendered)]
    while stack:
        location, value = stack.pop()
        if value == _CODE_PROBE:
            return location
        if isinstance(value, dict):
            stack.extend(((*location, key), item) for key, item in value.items())
    return None
