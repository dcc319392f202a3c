"""``create_service_app``: the one way a service becomes an ASGI app.

Every app it builds has, by construction: default-deny authentication and rate
limits on every route (SecureRoute), request ids, security headers, strict CORS,
a body-size limit, one error shape, health/readiness/metrics probes, and a
lifespan that opens every pool and client and closes them on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

from xynergy.platform.config import Settings
from xynergy.platform.docs_pages import pages_router, site_links_for
from xynergy.platform.errors import install_error_handlers
from xynergy.platform.middleware import (
    API_CONTENT_SECURITY_POLICY,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    RouteOwnedCorsMiddleware,
)
from xynergy.platform.openapi import install_contract
from xynergy.platform.probes import probes_router
from xynergy.platform.routing import SecureRoute
from xynergy.platform.runtime import Platform
from xynergy.platform.slash_redirect import install_relative_slash_redirects
from xynergy.platform.web_sessions.endpoints import sessions_router
from xynergy.platform.websocket_routing import SecureWebSocketRoute

__all__ = ["Hook", "create_service_app", "walk_routes"]

Hook = Callable[[Platform], Awaitable[None]]

_EXPOSED_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
    # A replayed answer to a repeated Idempotency-Key (platform/idempotency.py).
    "Idempotent-Replayed",
]


def walk_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, looking inside routers that FastAPI keeps nested when included.

    (Since 0.16x ``include_router`` keeps the router as one entry instead of
    copying its routes; the routes inside are the originals, so their class and
    path are what we declared.)
    """
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from walk_routes(nested.routes)
        else:
            yield route


def _refuse_insecure_routes(routes: Sequence[BaseRoute], slug: str, settings: Settings) -> None:
    for route in walk_routes(routes):
        # A SecureWebSocketRoute authenticates before accept as a SecureRoute does
        # before the body (platform/websocket_routing.py).
        if isinstance(route, SecureRoute | SecureWebSocketRoute):
            if route.rate_class is not None and route.rate_class not in settings.rate_limits:
                raise RuntimeError(
                    f"{slug}: route {route.path!r} uses rate-limit class "
                    f"{route.rate_class!r}, which settings.rate_limits does not define"
                )
            continue
        raise RuntimeError(
            f"{slug}: route {getattr(route, 'path', route)!r} is not a SecureRoute; "
            "build routers with xynergy.platform.routing.api_router() (WebSockets: "
            "xynergy.platform.websocket_routing.SecureWebSocketRoute)"
        )


def create_service_app(
    *,
    slug: str,
    title: str,
    settings: Settings,
    routers: Sequence[APIRouter] = (),
    platform: Platform | None = None,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    content_security_policy: str = API_CONTENT_SECURITY_POLICY,
) -> FastAPI:
    """Build a service's ASGI app.

    Args:
        slug: URL-safe service name; its mount path in all-in-one mode.
        title: Human-readable name for the OpenAPI document.
        settings: Platform settings.
        routers: The service's routers, each built with ``api_router()``.
        platform: Shared resources (all-in-one); None makes the app open its own.
        on_startup: Service hooks run after the platform is open.
        on_shutdown: Service hooks run before the platform closes; they run even if
            a startup hook failed, so each must cope with a resource never opened.
        content_security_policy: CSP header value (HTML services loosen it).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_platform = app.state.platform is None
        if owns_platform:
            app.state.platform = await Platform.open(settings)
            app.state.platform.services.attach_in_process(app, {slug: ""})
        shared: Platform = app.state.platform
        try:
            for hook in on_startup:
                await hook(shared)
            if owns_platform:
                await shared.settle_after_startup()
            yield
        finally:
            try:
                for hook in reversed(on_shutdown):
                    await hook(shared)
            finally:
                if owns_platform:
                    await shared.close()

    # FastAPI's docs page loads Swagger UI from a CDN and its openapi.json route is
    # not a SecureRoute: pages_router serves both (platform/docs_pages.py).
    # FastAPI's native OpenTelemetry is off: the platform exports none, and with it on
    # FastAPI asks OpenTelemetry for its global providers on every request (an
    # environment lookup each; ~2 % of a proxied AI request, bench/gateway_hot_path.py).
    app = FastAPI(
        title=title,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.router.route_class = SecureRoute
    install_relative_slash_redirects(app.router)
    app.state.service_slug = slug
    # What the pages link to; all-in-one mode replaces it (docs_pages.share_site_links).
    app.state.site_links = site_links_for(slug, title)
    app.state.platform = platform
    # The routes themselves, not include_router(): FastAPI now keeps an included
    # router nested and resolves it per request, which costs measurably on every
    # call; our routers carry their prefix already, so nothing is lost. Service
    # routes go first, then the probes and the pages: routes are matched in order,
    # so the hot routes should not wait behind the rarely used ones.
    own_routes = [
        route
        for router in (*routers, probes_router, sessions_router, pages_router)
        for route in router.routes
    ]
    app.router.routes[0:0] = own_routes
    _refuse_insecure_routes(app.routes, slug, settings)
    install_error_handlers(app, settings)
    install_contract(app, settings.rate_limits, settings=settings)

    # Added innermost first: the request context wraps everything, so even a 413
    # or a CORS preflight carries the request id and security headers.
    upload_paths = [
        route.path_regex
        for route in walk_routes(app.routes)
        if isinstance(route, SecureRoute) and route.accepts_uploads
    ]
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_paths=upload_paths,
        max_upload_bytes=settings.max_upload_bytes,
    )
    if settings.cors_origins:
        app.add_middleware(
            RouteOwnedCorsMiddleware,
            own_paths=[
                route.path_regex
                for route in walk_routes(app.routes)
                if isinstance(route, SecureRoute) and route.handles_own_cors
            ],
            allow_origins=settings.cors_origins,
            allow_methods=settings.cors_methods,
            allow_headers=settings.cors_headers,
            expose_headers=_EXPOSED_HEADERS,
            max_age=settings.cors_max_age_seconds,
        )
    app.add_middleware(
        RequestContextMiddleware,
        service=slug,
        settings=settings,
        metrics=lambda: app.state.platform.metrics,
        csp=content_security_policy,
    )
    return app
