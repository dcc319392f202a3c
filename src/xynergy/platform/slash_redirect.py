"""Trailing-slash redirects that never leave the site.

Starlette's own redirect (``redirect_slashes=True``) builds an absolute URL from
the request's ``Host`` header, so ``Host: evil.example`` sent a client to
``http://evil.example/...``. :func:`install_relative_slash_redirects` turns that
off and puts a fallback in its place: when no route matches but the other slash
form of the path does, it answers 307 with a *relative* ``Location`` (the full
path, mount prefix included, and the query string); otherwise the router's
usual 404 (the platform's JSON error inside an app).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["install_relative_slash_redirects"]

# Characters a path may keep unescaped (RFC 3986 pchar and "/"); everything else,
# including a backslash some browsers read as "/", is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


class _RelativeSlashRedirect:
    """A router's not-found handler that first tries the other slash form."""

    def __init__(self, router: Router, not_found: ASGIApp) -> None:
        self._router = router
        self._not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        location = self._location(scope) if scope["type"] == "http" else None
        if location is None:
            await self._not_found(scope, receive, send)
            return
        await RedirectResponse(location)(scope, receive, send)

    def _location(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if path in ("/", root_path, root_path + "/"):
            return None
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        candidate = {**scope, "path": other}
        if not any(route.matches(candidate)[0] is not Match.NONE for route in self._router.routes):
            return None
        location = quote(other, safe=_PATH_SAFE)
        # "//host/..." is a network-path reference: a browser would leave the site.
        if not location.startswith("/") or location.startswith("//"):
            return None
        query: bytes = scope.get("query_string", b"")
        return location + "?" + query.decode("latin-1") if query else location


def install_relative_slash_redirects(router: Router) -> None:
    """Replace ``router``'s Host-derived slash redirects with relative ones."""
    router.redirect_slashes = False
    if not isinstance(router.default, _RelativeSlashRedirect):
        router.default = _RelativeSlashRedirect(router, router.default)
