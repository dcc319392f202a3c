"""Serving modes: all-in-one (every service mounted under ``/<slug>``) or one service.

This module, not ``xynergy.platform``, knows the list of services: the platform
layer imports no service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from xynergy.ai_assistant.app import SLUG as AI_ASSISTANT
from xynergy.ai_assistant.app import create_ai_assistant_app
from xynergy.ai_routing.app import SLUG as AI_ROUTING_ENGINE
from xynergy.ai_routing.app import create_ai_routing_app
from xynergy.aso_engine.app import SLUG as ASO_ENGINE
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.intelligence_gateway.app import SLUG as INTELLIGENCE_GATEWAY
from xynergy.intelligence_gateway.app import create_intelligence_gateway_app
from xynergy.marketing_engine.app import SLUG as MARKETING_ENGINE
from xynergy.marketing_engine.app import create_marketing_engine_app
from xynergy.platform.admin_app import PLATFORM_SLUG, create_admin_app
from xynergy.platform.config import Settings
from xynergy.platform.docs_pages import share_site_links
from xynergy.platform.runtime import Platform
from xynergy.platform.slash_redirect import install_relative_slash_redirects
from xynergy.platform_dashboard.app import SLUG as PLATFORM_DASHBOARD
from xynergy.platform_dashboard.app import create_platform_dashboard_app
from xynergy.system_runtime.app import SLUG as SYSTEM_RUNTIME
from xynergy.system_runtime.app import create_system_runtime_app

__all__ = ["SERVICES", "build_all_in_one", "build_standalone"]

ServiceFactory = Callable[[Settings], FastAPI]

# slug -> factory. Business services register here as they are built; the
# platform admin app is served at the root, so it is not in this table.
SERVICES: dict[str, ServiceFactory] = {
    ASO_ENGINE: create_aso_engine_app,
    AI_ROUTING_ENGINE: create_ai_routing_app,
    INTELLIGENCE_GATEWAY: create_intelligence_gateway_app,
    MARKETING_ENGINE: create_marketing_engine_app,
    SYSTEM_RUNTIME: create_system_runtime_app,
    # After the AI Routing Engine: it stops first, storing replies still in flight.
    AI_ASSISTANT: create_ai_assistant_app,
    # Last: it reports on the others, so it starts after and stops before them.
    PLATFORM_DASHBOARD: create_platform_dashboard_app,
}


def build_standalone(settings: Settings, slug: str) -> FastAPI:
    """One service at its root paths, opening its own platform resources."""
    if slug == PLATFORM_SLUG:
        return create_admin_app(settings)
    try:
        factory = SERVICES[slug]
    except KeyError:
        known = ", ".join(sorted([PLATFORM_SLUG, *SERVICES]))
        raise ValueError(f"unknown service {slug!r}; known: {known}") from None
    return factory(settings)


def build_all_in_one(
    settings: Settings, services: dict[str, ServiceFactory] | None = None
) -> Starlette:
    """Every service in one process, sharing one Platform (pools, caches, metrics)."""
    factories = SERVICES if services is None else services
    apps = {slug: factory(settings) for slug, factory in factories.items()}
    admin = create_admin_app(settings)
    mounts = {slug: f"/{slug}" for slug in apps} | {PLATFORM_SLUG: ""}
    # Every page (the root's first) links to every service's docs.
    share_site_links({"": admin} | {f"/{slug}": app for slug, app in apps.items()})

    @asynccontextmanager
    async def lifespan(root: Starlette) -> AsyncIterator[None]:
        platform = await Platform.open(settings)
        root.state.platform = platform
        try:
            async with AsyncExitStack() as stack:
                for app in [*apps.values(), admin]:
                    app.state.platform = platform
                    await stack.enter_async_context(app.router.lifespan_context(app))
                platform.services.attach_in_process(root, mounts)
                await platform.settle_after_startup()
                yield
        finally:
            await platform.close()

    routes = [Mount(f"/{slug}", app=app) for slug, app in apps.items()]
    # The admin app last and at the root: it owns /admin, the probes and the JSON 404.
    routes.append(Mount("", app=admin))
    root = _AllInOne(routes=routes, lifespan=lifespan)
    # A mount's pattern stops at a newline ("/a%0Ab" matches none): such a path
    # still goes to the admin app, for the platform's JSON 404 and headers
    # instead of Starlette's bare text one.
    root.router.default = admin
    install_relative_slash_redirects(root.router)
    return root


class _AllInOne(Starlette):
    """The all-in-one root: a request under a service's mount goes straight to it.

    Starlette's root would run its own error middleware (each service app has its
    own, so it never catches anything) and try the mounts' patterns one by one on
    every request; on the AI gateway's hot path that was ~4 % of the CPU. A
    request under ``/<slug>/`` gets the scope ``Mount`` gives it (``root_path``,
    ``app_root_path``, the route) and the root router for ``url_for``. Anything
    else (lifespan, the admin app, redirects, a ``root_path`` set by the server, a
    path with a newline) goes through Starlette as before.
    """

    def __init__(self, *, routes: list[Mount], **kwargs: Any) -> None:
        if kwargs.get("middleware"):
            # Requests under a mount skip the root's stack: its middleware would not
            # run for them. The platform's middleware lives in each service app.
            raise ValueError("the all-in-one root takes no middleware; add it to the apps")
        super().__init__(routes=routes, **kwargs)
        self._mounts = {mount.path.lstrip("/"): mount for mount in routes if mount.path}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        mount = self._direct_mount(scope)
        if mount is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope.setdefault("router", self.router)
        scope["route"] = mount
        scope["path_params"] = dict(scope.get("path_params", {}))
        scope["app_root_path"] = scope.get("app_root_path", "")
        scope["root_path"] = mount.path
        scope["endpoint"] = mount.app
        await mount.app(scope, receive, send)

    def _direct_mount(self, scope: Scope) -> Mount | None:
        if scope["type"] == "lifespan" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        slug, slash, _ = path[1:].partition("/")
        if not slash or "\n" in path:
            return None
        return self._mounts.get(slug)
