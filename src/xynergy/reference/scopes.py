"""The scopes table: every known scope and the routes that require it.

Read from the route table itself (each ``SecureRoute`` knows its scopes, whether
it is public and its rate class), so the table cannot say what the code does not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.routing import Route

from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.app import walk_routes
from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.config import Settings
from xynergy.platform.routing import SecureRoute
from xynergy.server import SERVICES

__all__ = ["RouteUse", "mounted_apps", "render_scopes_table", "route_uses"]

# The scope cell of public routes: they need no key at all.
PUBLIC = "none (public)"
NO_ROUTE_YET = "no route yet"


@dataclass(frozen=True, order=True)
class RouteUse:
    """One route as the table shows it: under ``scope`` (None: public)."""

    scope: str | None
    path: str
    method: str
    other_scopes: tuple[str, ...]
    rate_class: str | None


def mounted_apps(settings: Settings | None = None) -> dict[str, FastAPI]:
    """Mount path -> app, as all-in-one mode mounts them (the admin app at the root).

    Building an app opens nothing (resources open in its lifespan), so this is cheap.
    The settings default to the models' defaults, not the environment: the table
    must not depend on who generates it.
    """
    settings = settings or Settings(environment="development")
    apps = {f"/{slug}": factory(settings) for slug, factory in SERVICES.items()}
    return apps | {"": create_admin_app(settings)}


def route_uses(apps: Mapping[str, FastAPI]) -> list[RouteUse]:
    """One entry per (required scope, route, method), and one per public route and method."""
    uses: list[RouteUse] = []
    for mount, app in apps.items():
        for route in walk_routes(app.routes):
            if not isinstance(route, SecureRoute):
                # FastAPI's own documentation routes (the app factory refuses any
                # other kind): public, outside authentication and rate limits.
                if isinstance(route, Route):
                    path = mount + route.path
                    uses += [RouteUse(None, path, m, (), None) for m in _methods(route)]
                continue
            scopes = sorted(route.required_scopes)
            for method in _methods(route):
                path = mount + route.path
                if route.is_public:
                    uses.append(RouteUse(None, path, method, (), route.rate_class))
                for scope in scopes:
                    others = tuple(s for s in scopes if s != scope)
                    uses.append(RouteUse(scope, path, method, others, route.rate_class))
    return uses


def _methods(route: Route) -> list[str]:
    # HEAD comes with every GET of a plain Starlette route; it needs nothing more.
    return sorted(set(route.methods or ()) - {"HEAD"})


def render_scopes_table(uses: Iterable[RouteUse], known_scopes: Iterable[str] | None = None) -> str:
    """The Markdown table: every known scope with its routes, then the public routes.

    Args:
        uses: The routes, as ``route_uses`` lists them.
        known_scopes: Scopes to list even without a route; default ``KNOWN_SCOPES``.
    """
    uses = list(uses)
    known_scopes = KNOWN_SCOPES if known_scopes is None else known_scopes
    lines = [
        "| scope | method | path | also needs | rate class |",
        "|---|---|---|---|---|",
    ]
    by_scope: dict[str, list[RouteUse]] = {scope: [] for scope in known_scopes}
    for use in uses:
        if use.scope is not None:
            # A scope a route requires but KNOWN_SCOPES lacks still shows: the
            # table reports the code, and RequireScopes refuses unknown scopes anyway.
            by_scope.setdefault(use.scope, []).append(use)
    for scope in sorted(by_scope):
        routes = sorted(by_scope[scope])
        if not routes:
            lines.append(f"| `{scope}` | | {NO_ROUTE_YET} | | |")
        lines.extend(_row(f"`{scope}`", use) for use in routes)
    lines.extend(
        _row(PUBLIC, use) for use in sorted((u for u in uses if u.scope is None), key=_key)
    )
    return "\n".join(lines) + "\n"


def _key(use: RouteUse) -> tuple[str, str]:
    return use.path, use.method


def _row(scope_cell: str, use: RouteUse) -> str:
    others = ", ".join(f"`{scope}`" for scope in use.other_scopes)
    rate = use.rate_class or "not limited"
    return f"| {scope_cell} | {use.method} | `{use.path}` | {others} | {rate} |"
