"""Trailing-slash redirects stay on the site whatever ``Host`` the client sends.

Starlette's own redirect built an absolute URL from the ``Host`` header
(``Host: evil.example`` -> ``Location: http://evil.example/...``). The platform's
answers with a relative location: the path (mount prefix included) and query.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.types import ASGIApp

from tests.helpers import running
from xynergy.platform.app import create_service_app
from xynergy.platform.config import Settings
from xynergy.platform.routing import api_router, public
from xynergy.server import build_all_in_one, build_standalone

EVIL_HOST = {"Host": "evil.example"}

# (mode, service to serve standalone, requested path, expected Location)
CASES = [
    ("all-in-one", None, "/aso-engine/api/content/", "/aso-engine/api/content"),
    ("all-in-one", None, "/admin/keys/", "/admin/keys"),
    ("standalone", "aso-engine", "/api/content/", "/api/content"),
    ("standalone", "platform", "/admin/keys/", "/admin/keys"),
]
IDS = ["all-in-one-service", "all-in-one-admin", "standalone-service", "standalone-admin"]


def _build(settings: Settings, mode: str, service: str | None) -> ASGIApp:
    if mode == "all-in-one":
        return build_all_in_one(settings)
    assert service is not None
    return build_standalone(settings, service)


class TestTrailingSlashRedirect:
    @pytest.mark.parametrize(("mode", "service", "path", "location"), CASES, ids=IDS)
    async def test_the_location_is_relative_whatever_the_host(
        self,
        make_settings: Callable[..., Settings],
        mode: str,
        service: str | None,
        path: str,
        location: str,
    ) -> None:
        async with running(_build(make_settings(), mode, service)) as client:
            response = await client.get(path, headers=EVIL_HOST)
        assert response.status_code == 307, response.text
        assert response.headers["location"] == location
        assert "evil.example" not in response.text

    @pytest.mark.parametrize(("mode", "service", "path", "location"), CASES, ids=IDS)
    async def test_the_query_string_is_kept(
        self,
        make_settings: Callable[..., Settings],
        mode: str,
        service: str | None,
        path: str,
        location: str,
    ) -> None:
        async with running(_build(make_settings(), mode, service)) as client:
            response = await client.get(path + "?limit=5&cursor=a%2Fb", headers=EVIL_HOST)
        assert response.status_code == 307
        assert response.headers["location"] == location + "?limit=5&cursor=a%2Fb"

    @pytest.mark.parametrize("mode", ["all-in-one", "standalone"])
    async def test_a_path_matching_in_neither_form_is_the_json_404(
        self, make_settings: Callable[..., Settings], mode: str
    ) -> None:
        app = _build(make_settings(), mode, "aso-engine")
        async with running(app) as client:
            response = await client.get("/no/such/path/", headers=EVIL_HOST)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert "location" not in response.headers

    async def test_a_backslash_cannot_turn_the_location_into_another_host(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        # A route whose first segment is a parameter would match "/\evil.example";
        # a browser reads an unescaped "/\" as "//", another host.
        router = api_router()

        @router.get("/{name}")
        @public
        async def by_name(name: str) -> dict[str, str]:
            return {"name": name}

        app = create_service_app(
            slug="svc", title="svc", settings=make_settings(), routers=[router]
        )
        async with running(app) as client:
            response = await client.get("/%5Cevil.example/", headers=EVIL_HOST)
        assert response.status_code == 307
        assert response.headers["location"] == "/%5Cevil.example"
