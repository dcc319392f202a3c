"""Default deny, by construction: every route authenticates and is rate limited.

Every service router is an :func:`api_router`, whose routes are
:class:`SecureRoute`. Before FastAPI reads the body or validates anything, a
SecureRoute authenticates the caller (API key or internal token) unless the
endpoint is marked :func:`public` — the one marker for public routes — and then
counts the request against its route class's rate limit. ``create_service_app``
refuses to build an app containing any other kind of route.

Scopes are checked by :class:`RequireScopes` dependencies (see
``xynergy.platform.auth.dependencies``), which the route-walk test finds on every
non-public route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.internal_tokens import INTERNAL_TOKEN_HEADER
from xynergy.platform.client_ip import client_ip
from xynergy.platform.exceptions import Forbidden, NotFound, RateLimited, Unauthorized

__all__ = [
    "ACTING_TENANT_HEADER",
    "SecureRoute",
    "api_router",
    "exempt_from_rate_limit",
    "public",
    "rate_limit",
]

ACTING_TENANT_HEADER = "X-Xynergy-Tenant"
_PUBLIC_ATTR = "__xynergy_public__"
_RATE_CLASS_ATTR = "__xynergy_rate_class__"
_EXEMPT = "exempt"
_AUTH_FAILURES = "auth_failures"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BEARER = "bearer "

EndpointT = TypeVar("EndpointT", bound=Callable[..., Any])


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


def exempt_from_rate_limit(endpoint: EndpointT) -> EndpointT:
    """For probes only (health, readiness, metrics): never rate limited."""
    setattr(endpoint, _RATE_CLASS_ATTR, _EXEMPT)
    return endpoint


def _presented_key(request: Request) -> str | None:
    key = request.headers.get("x-api-key")
    if key:
        return key
    authorization = request.headers.get("authorization", "")
    if authorization[: len(_BEARER)].lower() == _BEARER:
        return authorization[len(_BEARER) :].strip()
    return None


class SecureRoute(APIRoute):
    """An APIRoute that authenticates and rate-limits before anything else runs."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Set before super().__init__, which builds the handler from them.
        self.is_public: bool = bool(getattr(endpoint, _PUBLIC_ATTR, False))
        methods = {m.upper() for m in kwargs.get("methods") or ("GET",)}
        declared = getattr(endpoint, _RATE_CLASS_ATTR, None)
        if declared is None:
            if self.is_public:
                declared = "public"
            else:
                declared = "reads" if methods <= _READ_METHODS else "writes"
        self.rate_class: str | None = None if declared == _EXEMPT else declared
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        is_public, rate_class = self.is_public, self.rate_class

        async def secured(request: Request) -> Response:
            platform = request.app.state.platform
            service = request.app.state.service_slug
            ip_identity = "ip:" + client_ip(request.scope, platform.settings.trusted_proxies)
            if is_public:
                identity = ip_identity
            else:
                auth = await _authenticate_or_count(request, platform, service, ip_identity)
                request.state.auth = auth
                # An internal call was already counted at the edge that minted it.
                identity = "" if auth.via == "internal" else "key:" + auth.key_id
            if rate_class is not None and identity:
                await platform.rate_limiter.hit(rate_class, identity, service=service)
            return await handler(request)

        return secured


async def _authenticate_or_count(
    request: Request, platform: Any, service: str, ip_identity: str
) -> AuthContext:
    limiter = platform.rate_limiter

    async def refuse_if_failing_too_often() -> None:
        if await limiter.exhausted(_AUTH_FAILURES, ip_identity):
            platform.metrics.rate_limit_rejections.labels(
                service=service, route_class=_AUTH_FAILURES
            ).inc()
            raise RateLimited("Too many failed authentications from this address.")

    try:
        return await authenticate(request, platform, refuse_if_failing_too_often)
    except (Unauthorized, Forbidden, NotFound) as exc:
        platform.metrics.auth_failures.labels(service=service, status=str(exc.status_code)).inc()
        if isinstance(exc, Unauthorized):
            await limiter.hit(_AUTH_FAILURES, ip_identity, service=service)
        raise


async def authenticate(
    request: Request,
    platform: Any,
    before_lookup: Callable[[], Awaitable[None]] | None = None,
) -> AuthContext:
    """The caller's context from an internal token or an API key."""
    token = request.headers.get(INTERNAL_TOKEN_HEADER)
    if token is not None:
        auth = platform.internal_tokens.verify(token, audience=request.app.state.service_slug)
    else:
        key = _presented_key(request)
        if not key:
            raise Unauthorized()
        auth = await platform.key_verifier.verify(key, before_lookup=before_lookup)
    acting = request.headers.get(ACTING_TENANT_HEADER)
    if acting and acting != auth.tenant_id:
        if not auth.is_admin:
            raise Forbidden("Only an admin key may act for another tenant.")
        if not await platform.tenant_exists(acting):
            raise NotFound("No such tenant.")
        auth = auth.acting_for(acting)
    return auth


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter whose routes are SecureRoutes; services build routers with this."""
    return APIRouter(route_class=SecureRoute, **kwargs)
