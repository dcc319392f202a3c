"""The static files of the web pages: an allow-list at content-hashed URLs.

Third-party files come from npm, pinned by ``package-lock.json``: Swagger UI
(``swagger-ui-dist``) for the docs pages, ``marked`` and ``dompurify`` for the AI
Assistant's chat page, ``uplot`` for the Platform Dashboard's charts. ``make
docs-assets`` copies the files the pages load into ``static/vendor/<package>/``
(never committed, never fetched from a CDN at run time). Our own stylesheets and
scripts live in ``static/``.

Each file is served at ``/docs/assets/<digest>/<name>``, ``<digest>`` being a hash
of its content: the URL changes whenever the file does, so a browser may keep it
for a year. A name is looked up in a fixed table, never joined to a path, so no
request can reach any other file.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from xynergy.platform.exceptions import NotFound, XynergyError

__all__ = [
    "ASSETS_PATH",
    "IMMUTABLE_CACHE_CONTROL",
    "OWN_FILES",
    "SWAGGER_UI_DIR",
    "SWAGGER_UI_FILES",
    "Asset",
    "CHART_FILES",
    "MARKDOWN_FILES",
    "MARKDOWN_PACKAGES",
    "DocsUnavailable",
    "asset_url",
    "docs_assets",
    "find_asset",
    "installed",
    "require_swagger_ui",
]

STATIC_DIR = Path(__file__).parent / "static"
SWAGGER_UI_DIR = STATIC_DIR / "vendor" / "swagger-ui"
OWN_FILES = (
    "site.css",
    "docs.js",
    "favicon.svg",
    "app.css",
    "app.js",
    "chat.css",
    "chat.js",
    "dashboard.css",
    "dashboard.js",
    "dashboard_traffic.js",
    "dashboard_cache.js",
    "dashboard_workflows.css",
    "dashboard_workflows.js",
    "dashboard_admin.css",
    "dashboard_keys.js",
    "dashboard_intake.js",
    "dashboard_alerts.css",
    "dashboard_alerts.js",
)
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")
# The chat page's Markdown: a parser, then a sanitiser of what it made (file: package).
MARKDOWN_PACKAGES = {"marked.umd.js": "marked", "purify.min.js": "dompurify"}
MARKDOWN_FILES = tuple(MARKDOWN_PACKAGES)
# The dashboard's charts: uPlot's script and its stylesheet (no inline style needed).
CHART_PACKAGES = {"uPlot.iife.min.js": "uplot", "uPlot.min.css": "uplot"}
CHART_FILES = tuple(CHART_PACKAGES)
ASSETS_PATH = "/docs/assets/{digest}/{name}"
# A content-addressed URL never changes meaning, so the browser need not ask again.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# Hex digits of SHA-256 in the URL: enough to tell versions apart, short to read.
_DIGEST_HEX_CHARS = 16
# mimetypes guesses from the system's tables, which differ between machines.
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


class DocsUnavailable(XynergyError):
    """Swagger UI's files are not installed next to the package."""

    status_code = 503
    code = "docs_unavailable"
    default_detail = (
        "The API docs page is not installed on this server: run `make docs-assets` "
        "(npm ci) and restart it. The OpenAPI document is at openapi.json."
    )


@dataclass(frozen=True, slots=True)
class Asset:
    """One servable file: where it is on disk and the hash its URL carries."""

    name: str
    path: Path
    digest: str
    media_type: str


def _asset(path: Path) -> Asset:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:_DIGEST_HEX_CHARS]
    media_type = _MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    return Asset(path.name, path, digest, media_type or "application/octet-stream")


@lru_cache(maxsize=1)  # one table: the function takes no argument
def docs_assets() -> dict[str, Asset]:
    """Every servable file that is installed, by name, hashed once per process.

    Our own files ship inside the package; the npm packages' are there once
    ``make docs-assets`` has run (the server reads them at its first page).
    Names are the lookup keys, so no two listed files share one.
    """
    paths = [STATIC_DIR / name for name in OWN_FILES]
    paths += [SWAGGER_UI_DIR / name for name in SWAGGER_UI_FILES]
    vendored = MARKDOWN_PACKAGES | CHART_PACKAGES
    paths += [STATIC_DIR / "vendor" / package / name for name, package in vendored.items()]
    return {path.name: _asset(path) for path in paths if path.is_file()}


def installed(names: tuple[str, ...]) -> bool:
    """Whether every one of ``names`` is installed."""
    table = docs_assets()
    return all(name in table for name in names)


def require_swagger_ui() -> None:
    """Raise DocsUnavailable unless every Swagger UI file is installed."""
    if not installed(SWAGGER_UI_FILES):
        raise DocsUnavailable()


def asset_url(root_path: str, name: str) -> str:
    """The URL of asset ``name`` under an app served at ``root_path``."""
    asset = docs_assets()[name]
    return root_path + ASSETS_PATH.format(digest=asset.digest, name=asset.name)


def find_asset(digest: str, name: str) -> Asset:
    """The asset a URL names; a stale digest or an unknown name is not found."""
    asset = docs_assets().get(name)
    if asset is None or asset.digest != digest:
        raise NotFound("No such asset.")
    return asset
