"""The all-in-one app: every request, matched by a mount or not, gets the platform's answer.

Requests under a service's mount skip Starlette's root router (the hot path's
dispatch is a dict lookup) and must see the scope ``Mount`` would have given them.

A mount's pattern (``/<slug>/{path:path}``, and the admin app's at the root)
stops at a newline, so ``/a%0Ab`` matched no mount and Starlette answered its
bare ``text/plain`` 404, without the platform's headers (request id, security
headers). schemathesis found it with a generated campaign id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from tests.helpers import running
from xynergy.platform.config import Settings
from xynergy.server import _AllInOne, build_all_in_one

# What a service app reads from the scope its mount hands it.
MOUNT_SCOPE_KEYS = ("path", "root_path", "app_root_path", "path_params", "endpoint")

# Percent-encoded newlines: the path the app sees holds a real "\n".
UNMOUNTED_PATHS = [
    "/a%0Ab",
    "/marketing-engine/campaigns/a%0Ab/activate",
    "/aso-engine/api/content/%0A",
]


class TestUnmatchedPaths:
    @pytest.mark.parametrize("path", UNMOUNTED_PATHS)
    async def test_a_path_no_mount_matches_is_the_platform_json_404(
        self, make_settings: Callable[..., Settings], path: str
    ) -> None:
        async with running(build_all_in_one(make_settings())) as client:
            response = await client.post(path)

        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "not_found"
        assert response.headers["x-request-id"] == response.json()["request_id"]


class _ScopeEcho:
    """A mounted app answering with what it saw of the scope."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        seen: dict[str, Any] = {key: scope.get(key) for key in MOUNT_SCOPE_KEYS}
        seen["endpoint"] = getattr(seen["endpoint"], "name", None)
        seen["app"] = type(scope["app"]).__name__
        seen["router_is_roots"] = scope["router"] is scope["app"].router
        seen["mount"] = scope["route"].path
        await JSONResponse({"served_by": self.name, **seen})(scope, receive, send)


def _routes() -> list[Mount]:
    return [Mount("/svc", app=_ScopeEcho("svc")), Mount("", app=_ScopeEcho("admin"))]


class TestDirectDispatch:
    @pytest.mark.parametrize(
        "path", ["/svc/x", "/svc/x/y/", "/svc/", "/svc", "/other/x", "/", "/svcx/y"]
    )
    async def test_a_service_sees_the_scope_its_mount_gave(self, path: str) -> None:
        async with running(Starlette(routes=_routes())) as client:
            expected = await client.get(path)
        async with running(_AllInOne(routes=_routes())) as client:
            direct = await client.get(path)
        assert direct.status_code == expected.status_code
        seen, wanted = direct.json(), expected.json()
        assert seen.pop("app") == "_AllInOne"
        assert wanted.pop("app") == "Starlette"
        assert seen == wanted

    async def test_a_service_path_skips_the_roots_router(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        tried: list[str] = []
        matches = Mount.matches

        def counting(self: Mount, scope: Scope) -> Any:
            tried.append(self.path)
            return matches(self, scope)

        monkeypatch.setattr(Mount, "matches", counting)
        async with running(_AllInOne(routes=_routes())) as client:
            assert (await client.get("/svc/x")).json()["served_by"] == "svc"
            assert not tried
            assert (await client.get("/elsewhere")).json()["served_by"] == "admin"
            assert tried

    def test_root_middleware_is_refused(self) -> None:
        from starlette.middleware import Middleware
        from starlette.middleware.gzip import GZipMiddleware

        with pytest.raises(ValueError, match="no middleware"):
            _AllInOne(routes=_routes(), middleware=[Middleware(GZipMiddleware)])
