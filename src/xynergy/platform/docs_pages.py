"""The HTML pages every service app serves: ``/`` (what runs here) and ``/docs``.

They replace FastAPI's docs page, which loads Swagger UI from a CDN with an
inline script: the API's policy (``default-src 'none'``) blocks both, so the page
was blank. Here the pages are template files, every script and stylesheet comes
from this origin (``docs_assets``), and each page's response carries a
Content-Security-Policy made for it; every other response keeps the API's.

In all-in-one mode ``server.py`` hands every app the list of mounted services
(:func:`share_site_links`), so each page links to all of them; a service served
alone lists itself only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse
from jinja2 import Environment, FileSystemLoader
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from xynergy.platform.docs_assets import (
    ASSETS_PATH,
    IMMUTABLE_CACHE_CONTROL,
    asset_url,
    find_asset,
    require_swagger_ui,
)
from xynergy.platform.routing import api_router, public, rate_limit

__all__ = [
    "DOCS_CONTENT_SECURITY_POLICY",
    "HomePage",
    "SITE_CONTENT_SECURITY_POLICY",
    "ServiceLink",
    "pages_router",
    "render_page",
    "share_site_links",
    "site_links_for",
]

# Exactly what Swagger UI needs: its scripts and styles from here, the icons its
# stylesheet draws as data: SVGs, and fetches of the OpenAPI documents and of
# "Try it out" requests to this origin. No inline script or style, no eval.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# The index page runs no script and fetches nothing: a stylesheet and an icon.
# It works without Swagger UI installed.
SITE_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# What an app may serve at its ``/`` instead of the index (set on ``app.state.home_page``).
HomePage = Callable[[Request], Awaitable[Response]]
# Bounds on the asset URL's parts; real ones are far shorter (a digest and a file name).
_MAX_DIGEST_CHARS = 64
_MAX_NAME_CHARS = 100

_templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


@dataclass(frozen=True, slots=True)
class ServiceLink:
    """A service on this server: its slug, title and mount prefix ("" at the root)."""

    slug: str
    title: str
    prefix: str


def site_links_for(slug: str, title: str) -> tuple[ServiceLink, ...]:
    """The links of an app served alone: itself, at the root."""
    return (ServiceLink(slug, title, ""),)


def share_site_links(mounted: Mapping[str, FastAPI]) -> None:
    """Tell every app in ``mounted`` (prefix -> app) where all of them are served."""
    links = tuple(
        ServiceLink(app.state.service_slug, app.title, prefix) for prefix, app in mounted.items()
    )
    for app in mounted.values():
        app.state.site_links = links


@dataclass(frozen=True, slots=True)
class _Site:
    """The request's view of the server: its links and the root they hang from."""

    links: tuple[ServiceLink, ...]
    own: ServiceLink
    server_root: str

    def url(self, link: ServiceLink, path: str) -> str:
        return self.server_root + link.prefix + path


def _site(request: Request) -> _Site:
    links: tuple[ServiceLink, ...] = request.app.state.site_links
    slug = request.app.state.service_slug
    own = next(link for link in links if link.slug == slug)
    # A mount extends root_path by its prefix; removing ours gives the server's root.
    root_path = request.scope.get("root_path", "").rstrip("/")
    server_root = root_path.removesuffix(own.prefix) if own.prefix else root_path
    return _Site(links, own, server_root)


def render_page(request: Request, template: str, csp: str, context: dict[str, Any]) -> Response:
    """``template`` (from ``templates/``) with the site's links, under policy ``csp``.

    Every page also gets ``app_root``: where this app is served (its mount
    prefix under the server's root path), for the page's own API calls.
    """
    site = _site(request)
    app_root = site.url(site.own, "")

    def asset(name: str) -> str:
        return asset_url(app_root, name)

    services = [
        {
            "title": link.title,
            "slug": link.slug,
            "home": site.url(link, "/"),
            "docs": site.url(link, "/docs"),
            "openapi": site.url(link, "/openapi.json"),
            "healthz": site.url(link, "/healthz"),
            "readyz": site.url(link, "/readyz"),
            "current": link == site.own,
        }
        for link in site.links
    ]
    return _templates.TemplateResponse(
        request,
        template,
        {"asset": asset, "services": services, "own": site.own, "app_root": app_root, **context},
        headers={"Content-Security-Policy": csp},
    )


pages_router = api_router(include_in_schema=False)

# The pages, their assets and the OpenAPI documents share one per-address class,
# apart from ``public``: reading the docs must not spend the budget of the public
# intake forms, nor the forms' visitors the docs'.
_PAGES_RATE_CLASS = "docs"


@pages_router.get("/openapi.json")
@public
@rate_limit(_PAGES_RATE_CLASS)
async def openapi_document(request: Request) -> Response:
    """This service's OpenAPI document (FastAPI's own route replaced: it was neither
    rate limited nor a SecureRoute). Mounted under a prefix, the prefix is the
    document's first server, so clients resolve paths against it."""
    app: FastAPI = request.app
    schema = app.openapi()
    root_path = request.scope.get("root_path", "").rstrip("/")
    if root_path and root_path not in {server.get("url") for server in schema.get("servers", [])}:
        schema = {**schema, "servers": [{"url": root_path}, *schema.get("servers", [])]}
    return JSONResponse(schema)


@pages_router.get("/")
@public
@rate_limit(_PAGES_RATE_CLASS)
async def site_index(request: Request) -> Response:
    """The services on this server, their docs and their health endpoints; or the
    app's own page when it has one (``app.state.home_page``: the AI Assistant's chat).

    One route either way, so every app's ``/`` keeps one rate class and policy walk.
    """
    home: HomePage | None = getattr(request.app.state, "home_page", None)
    if home is not None:
        return await home(request)
    return render_page(request, "index.html", SITE_CONTENT_SECURITY_POLICY, {})


@pages_router.get("/docs")
@public
@rate_limit(_PAGES_RATE_CLASS)
async def docs_page(request: Request) -> Response:
    """Swagger UI for this service's OpenAPI document (and its neighbours')."""
    require_swagger_ui()  # else 503, saying how to install it
    site = _site(request)
    config = {
        "urls": [
            {"name": link.title, "url": site.url(link, "/openapi.json")} for link in site.links
        ],
        "primaryName": site.own.title,
    }
    context = {"config": config, "on_docs": True}
    return render_page(request, "docs.html", DOCS_CONTENT_SECURITY_POLICY, context)


@pages_router.get(ASSETS_PATH)
@public
@rate_limit(_PAGES_RATE_CLASS)
async def docs_asset(
    digest: Annotated[str, PathParam(max_length=_MAX_DIGEST_CHARS)],
    name: Annotated[str, PathParam(max_length=_MAX_NAME_CHARS)],
) -> Response:
    """One file of the pages, at a URL that changes with its content."""
    asset = find_asset(digest, name)
    return FileResponse(
        asset.path,
        media_type=asset.media_type,
        headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL},
    )
