"""Default deny, by construction: every route authenticates and is rate limited.

Every service router is an :func:`api_router`, whose routes are
:class:`SecureRoute`. Before FastAPI reads the body or validates anything, a
SecureRoute authenticates the caller (API key or internal token) unless the
endpoint is marked :func:`public` — the one marker for public routes — and then
counts the request against its route class's rate limit. It then refuses text
no endpoint can handle (NUL or non-UTF-8 in the URL, lone surrogates in a JSON
body: ``xynergy.platform.input_text``). ``create_service_app`` refuses to build
an app containing any other kind of route.

Scopes are declared by :class:`RequireScopes` dependencies (see
``xynergy.platform.auth.dependencies``); a SecureRoute takes the ones declared
on the endpoint itself out of FastAPI's solver and checks them right after
authentication (``xynergy.platform.scope_hoisting``). The route-walk test finds
scopes on every non-public route.

Every authenticated write route honours an ``Idempotency-Key`` header
(``xynergy.platform.idempotency``) unless its endpoint opts out with
:func:`idempotency_exempt`, giving the reason.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection
from starlette.types import Scope

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import RequireScopes
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER
from xynergy.platform.auth.scopes import PLATFORM_WIDE_SCOPES
from xynergy.platform.client_ip import client_ip
from xynergy.platform.error_shapes import PLATFORM_ERRORS, ErrorShape
from xynergy.platform.exceptions import (
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    XynergyError,
)
from xynergy.platform.idempotency import (
    WRITE_METHODS,
    idempotency_key_of,
    run_idempotently,
)
from xynergy.platform.input_text import check_request_text
from xynergy.platform.rate_limit import LimitedRequest, bind_request, unbind_request
from xynergy.platform.scope_hoisting import hoist_scope_checks
from xynergy.platform.web_sessions.access import authenticate_session
from xynergy.platform.web_sessions.cookies import session_token_of

__all__ = [
    "ACTING_TENANT_HEADER",
    "SecureRoute",
    "accepts_uploads",
    "acts_in_one_tenant",
    "api_router",
    "exempt_from_rate_limit",
    "fast_path",
    "handles_own_cors",
    "idempotency_exempt",
    "public",
    "rate_limit",
    "raises",
    "shaped_errors",
]

ACTING_TENANT_HEADER = "X-Xynergy-Tenant"
_PUBLIC_ATTR = "__xynergy_public__"
_RATE_CLASS_ATTR = "__xynergy_rate_class__"
_UPLOAD_ATTR = "__xynergy_accepts_uploads__"
_FAST_PATH_ATTR = "__xynergy_fast_path__"
_OWN_CORS_ATTR = "__xynergy_handles_own_cors__"
_ERROR_SHAPE_ATTR = "__xynergy_error_shape__"
_RAISES_ATTR = "__xynergy_raises__"
_IDEMPOTENCY_EXEMPT_ATTR = "__xynergy_idempotency_exempt__"
_EXEMPT = "exempt"
_AUTH_FAILURES = "auth_failures"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BEARER = "bearer "
# Tenant ids are new_id() values; anything else is refused without a lookup.
_TENANT_ID = re.compile(r"[0-9a-f]{32}")

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])
FastPath = Callable[[Request], Awaitable[Response | None]]


def public(endpoint: EndpointT) -> EndpointT:
    """Mark an endpoint as reachable without a key: the only way to make one."""
    setattr(endpoint, _PUBLIC_ATTR, True)
    return endpoint


def rate_limit(route_class: str) -> Callable[[EndpointT], EndpointT]:
    """Put an endpoint in ``route_class`` instead of the default reads/writes class."""

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _RATE_CLASS_ATTR, route_class)
        return endpoint

    return mark


def accepts_uploads(endpoint: EndpointT) -> EndpointT:
    """Allow request bodies up to ``max_upload_bytes`` (instead of ``max_body_bytes``).

    For endpoints that stream a large body (bulk imports) and enforce their own,
    usually smaller, bound while reading it.
    """
    setattr(endpoint, _UPLOAD_ATTR, True)
    return endpoint


def fast_path(handler: FastPath) -> Callable[[EndpointT], EndpointT]:
    """Try ``handler(request)`` before FastAPI parses the request; None falls through.

    It runs after authentication, the rate limit and the scope check, with
    ``request.state.auth`` set. For answers that are already known (a cache hit
    recognised from the raw body): they should not pay for body parsing and
    dependency solving they do not need. The endpoint stays the full path.
    """

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _FAST_PATH_ATTR, handler)
        return endpoint

    return mark


def handles_own_cors(endpoint: EndpointT) -> EndpointT:
    """The route answers CORS itself (per-resource origins, e.g. a public form's
    own site list), so the app-wide CORS middleware leaves its path alone."""
    setattr(endpoint, _OWN_CORS_ATTR, True)
    return endpoint


def shaped_errors(shape: ErrorShape) -> Callable[[EndpointT], EndpointT]:
    """Render this endpoint's errors (authentication and rate limits included) in
    ``shape`` instead of the platform's; the OpenAPI document declares the same."""

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _ERROR_SHAPE_ATTR, shape)
        return endpoint

    return mark


def raises(*errors: type[XynergyError]) -> Callable[[EndpointT], EndpointT]:
    """Declare the errors this endpoint's own logic answers (a conflict, a spent
    budget, an upstream that fails...), for its OpenAPI document.

    The status and code come from each class. Errors that follow from the route
    itself (authentication, scopes, rate limit, parameters, body, database) are
    derived by ``xynergy.platform.openapi`` and need no declaration.
    """

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _RAISES_ATTR, (*getattr(endpoint, _RAISES_ATTR, ()), *errors))
        return endpoint

    return mark


def idempotency_exempt(reason: str) -> Callable[[EndpointT], EndpointT]:
    """Leave this write endpoint out of the Idempotency-Key layer, for ``reason``.

    For answers that must never be stored (a secret shown once) or cannot be
    (a stream). A route walk test lists every exemption with its reason.
    """
    if not reason.strip():
        raise ValueError("an idempotency exemption needs its reason")

    def mark(endpoint: EndpointT) -> EndpointT:
        setattr(endpoint, _IDEMPOTENCY_EXEMPT_ATTR, reason)
        return endpoint

    return mark


def exempt_from_rate_limit(endpoint: EndpointT) -> EndpointT:
    """For the health and readiness probes only: never rate limited."""
    setattr(endpoint, _RATE_CLASS_ATTR, _EXEMPT)
    return endpoint


@dataclass(frozen=True, slots=True)
class _Credentials:
    api_key: str | None
    internal_token: str | None
    acting_tenant: str | None


_API_KEY = b"x-api-key"
_AUTHORIZATION = b"authorization"
_INTERNAL_TOKEN = INTERNAL_TOKEN_HEADER.lower().encode()
_ACTING_TENANT = ACTING_TENANT_HEADER.lower().encode()


def _credentials(scope: Scope) -> _Credentials:
    """What the request presents, read in one pass over the raw headers."""
    api_key = bearer = token = acting = None
    for name, value in scope["headers"]:
        if name == _API_KEY:
            api_key = value.decode("latin-1")
        elif name == _AUTHORIZATION:
            text = value.decode("latin-1")
            if text[: len(_BEARER)].lower() == _BEARER:
                bearer = text[len(_BEARER) :].strip()
        elif name == _INTERNAL_TOKEN:
            token = value.decode("latin-1")
        elif name == _ACTING_TENANT:
            acting = value.decode("latin-1")
    return _Credentials(api_key or bearer, token, acting)


class SecureRoute(APIRoute):
    """An APIRoute that authenticates and rate-limits before anything else runs."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Set before super().__init__, which builds the handler from them.
        self.is_public: bool = bool(getattr(endpoint, _PUBLIC_ATTR, False))
        self.accepts_uploads: bool = bool(getattr(endpoint, _UPLOAD_ATTR, False))
        self.handles_own_cors: bool = bool(getattr(endpoint, _OWN_CORS_ATTR, False))
        methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
        declared = getattr(endpoint, _RATE_CLASS_ATTR, None)
        if declared is None:
            if self.is_public:
                declared = "public"
            else:
                declared = "reads" if methods <= _READ_METHODS else "writes"
        self.rate_class: str | None = None if declared == _EXEMPT else declared
        self.required_scopes: frozenset[str] = frozenset()
        self.fast_path: FastPath | None = getattr(endpoint, _FAST_PATH_ATTR, None)
        self.error_shape: ErrorShape = getattr(endpoint, _ERROR_SHAPE_ATTR, PLATFORM_ERRORS)
        self.raises: tuple[type[XynergyError], ...] = getattr(endpoint, _RAISES_ATTR, ())
        self.idempotency_exempt: str | None = getattr(endpoint, _IDEMPOTENCY_EXEMPT_ATTR, None)
        self.honours_idempotency: bool = (
            not self.is_public and bool(methods & WRITE_METHODS) and self.idempotency_exempt is None
        )
        if not self.is_public:
            endpoint, self.required_scopes = hoist_scope_checks(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        is_public, rate_class = self.is_public, self.rate_class
        scope_check = RequireScopes(*self.required_scopes).check if self.required_scopes else None
        fast = self.fast_path
        # Uploads stream their own body; reading it here would hold it in memory.
        json_body = self.body_field is not None and not self.accepts_uploads
        idempotent, uploads = self.honours_idempotency, self.accepts_uploads

        async def answer(request: Request) -> Response:
            if fast is not None:
                answered = await fast(request)
                if answered is not None:
                    return answered
            return await handler(request)

        route_path = self.path

        async def secured(request: Request) -> Response:
            # Rejections by any limit this request consumes are counted under its route.
            bound, token = bind_request(route_path)
            try:
                return await checked(request, bound)
            finally:
                unbind_request(token)

        async def checked(request: Request, bound: LimitedRequest) -> Response:
            platform = request.app.state.platform
            service = request.app.state.service_slug
            if is_public:
                identity = _ip_identity(request, platform)
            else:
                auth = await _authenticate_or_count(request, platform, service)
                request.state.auth = auth
                # The key's own tenant: its budget is what ran out (an admin key may act
                # for another).
                bound.tenant_id = auth.key_tenant_id
                if scope_check is not None:
                    scope_check(auth)
                # An internal call was already counted at the edge that minted it.
                identity = "" if auth.via == "internal" else "key:" + auth.key_id
            if rate_class is not None and identity:
                await platform.rate_limiter.hit(rate_class, identity, service=service)
            await check_request_text(request, json_body=json_body)
            if idempotent and request.method in WRITE_METHODS:
                key = idempotency_key_of(request.scope)
                if key is not None:
                    return await run_idempotently(
                        request,
                        tenant_id=request.state.auth.tenant_id,
                        key=key,
                        streamed_body=uploads,
                        answer=answer,
                    )
            return await answer(request)

        return secured


def _ip_identity(request: HTTPConnection, platform: Any) -> str:
    return "ip:" + client_ip(request.scope, platform.settings.trusted_proxies)


async def _authenticate_or_count(
    request: HTTPConnection, platform: Any, service: str
) -> AuthContext:
    try:
        return await authenticate(request, platform)
    except (Unauthorized, Forbidden, NotFound) as exc:
        platform.metrics.auth_failures.labels(service=service, status=str(exc.status_code)).inc()
        if isinstance(exc, Unauthorized):
            await _count_failed_authentication(request, platform, service)
        raise


async def _count_failed_authentication(
    request: HTTPConnection, platform: Any, service: str
) -> None:
    # Only failures are counted, and only a failure is ever refused: a valid key
    # is served whatever its address did, so an attacker behind a shared address
    # (NAT, office proxy) cannot lock out the colleagues behind it. Past the
    # budget a failure answers 429 with Retry-After instead of 401.
    identity = _ip_identity(request, platform)
    try:
        await platform.rate_limiter.hit(_AUTH_FAILURES, identity, service=service)
    except RateLimited as limited:
        raise RateLimited(
            "Too many failed authentications from this address.", headers=limited.headers
        ) from None


async def authenticate(request: HTTPConnection, platform: Any) -> AuthContext:
    """The caller's context from an internal token, an API key or a browser session
    cookie (a request, or a WebSocket before it is accepted:
    platform/websocket_routing.py)."""
    presented = _credentials(request.scope)
    if presented.internal_token is not None:
        auth = platform.internal_tokens.verify(
            presented.internal_token, audience=request.app.state.service_slug
        )
    elif presented.api_key:
        auth = await platform.key_verifier.verify(presented.api_key)
    else:
        # A browser signed in through POST /session: the cookie stands for the key
        # (re-checked on every request) and unsafe methods need its CSRF token.
        # An explicit key, above, always wins over a cookie.
        token = session_token_of(request.scope)
        if token is None:
            raise Unauthorized()
        auth = await authenticate_session(request, platform, token)
    acting = presented.acting_tenant
    if acting and acting != auth.tenant_id:
        if not auth.is_admin:
            raise Forbidden("Only an admin key may act for another tenant.")
        if not _TENANT_ID.fullmatch(acting) or not await platform.tenant_exists(acting):
            raise NotFound("No such tenant.")
        auth = auth.acting_for(acting)
    elif not acting and auth.is_admin and auth.via == "key" and _acts_in_one_tenant(request):
        # Without the header an admin key would silently act in the operator's
        # own tenant (e.g. create a key there instead of the customer's).
        raise BadRequest(
            f"An admin key must name the tenant it acts for: send the {ACTING_TENANT_HEADER} "
            "header with the tenant id (the operator tenant's own id to act there)."
        )
    return auth


def _acts_in_one_tenant(request: HTTPConnection) -> bool:
    """Whether the matched route works on one tenant's data (not platform-wide)."""
    required: frozenset[str] = getattr(request.scope.get("route"), "required_scopes", frozenset())
    return acts_in_one_tenant(required)


def acts_in_one_tenant(required_scopes: frozenset[str]) -> bool:
    """Whether a route needing ``required_scopes`` works on one tenant's data, so an
    admin key must name the tenant (``X-Xynergy-Tenant``) to call it."""
    return bool(required_scopes) and not required_scopes & PLATFORM_WIDE_SCOPES


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes are SecureRoutes; services build routers with this."""
    return APIRouter(route_class=SecureRoute, **kwargs)
