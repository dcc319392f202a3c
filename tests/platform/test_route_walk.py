"""Default deny, proven over every route of every mounted app.

Each non-public route must answer 401 without a key, with a malformed key, a
revoked key and an expired key, and 403 with a key that lacks its scopes. The
set of public routes is asserted exactly, so adding one is a visible decision.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.helpers import auth, error_code, error_request_id_matches, issue_key, running
from xynergy.platform.app import create_service_app, walk_routes
from xynergy.platform.auth.dependencies import RequireScopes
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.routing import SecureRoute, api_router, public
from xynergy.platform.tenancy import service
from xynergy.platform.websocket_routing import SecureWebSocketRoute
from xynergy.server import build_all_in_one

# Public on purpose; anything else public is a finding. The pages (docs_pages.py)
# describe the API and serve no data. /session (platform/web_sessions) takes a key
# in its body or checks the session cookie itself: no key header to require.
EXPECTED_PUBLIC = {
    "/healthz",
    "/readyz",
    "/",
    "/docs",
    "/docs/assets/{digest}/{name}",
    "/openapi.json",
    "/session",
}
# The public intake: web forms post here without a key (spam-resistant, rate limited).
EXPECTED_PUBLIC_BY_MOUNT = {
    "/intelligence-gateway": {
        "/api/beta-applications",
        "/api/contact",
        "/api/forms/{public_id}/token",
    }
}
MALFORMED_KEY = "xyn_live_" + "A" * 49


@dataclass(frozen=True)
class WalkedRoute:
    mount: str
    route: SecureRoute

    @property
    def url(self) -> str:
        # Path parameters get a syntactically valid value: the request must fail
        # on authentication, not on routing or validation.
        path = re.sub(r"\{[^}]+\}", "0123abcd", self.route.path)
        return self.mount + path

    @property
    def method(self) -> str:
        return sorted(self.route.methods)[0]


def secure_routes(root: Starlette) -> Iterator[WalkedRoute]:
    """Every SecureRoute of every app mounted in ``root``."""
    for mount in root.routes:
        assert isinstance(mount, Mount)
        app = mount.app
        assert isinstance(app, FastAPI)
        for route in walk_routes(app.routes):
            if isinstance(route, SecureWebSocketRoute):
                continue  # walked by websocket_routes()
            # Every route, the docs and openapi.json included, is a SecureRoute.
            assert isinstance(route, SecureRoute), route
            yield WalkedRoute(mount.path, route)


def websocket_routes(root: Starlette) -> Iterator[tuple[str, SecureWebSocketRoute]]:
    """Every WebSocket route of every mounted app: (its URL, the route)."""
    for mount in root.routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        for route in walk_routes(mount.app.routes):
            if isinstance(route, SecureWebSocketRoute):
                yield mount.path + re.sub(r"\{[^}]+\}", "0123abcd", route.path), route


async def upgrade_answer(app: Starlette, url: str, headers: dict[str, str]) -> tuple[str, int]:
    """How ``app`` answers a WebSocket upgrade of ``url``: (first ASGI message type, status).

    Driven in process as uvicorn drives it, with the WebSocket Denial Response extension.
    """
    sent: list[MutableMapping[str, Any]] = []
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "scheme": "ws",
        "http_version": "1.1",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }
    received: list[MutableMapping[str, Any]] = [{"type": "websocket.connect"}]

    async def receive() -> MutableMapping[str, Any]:
        if received:
            return received.pop()
        await asyncio.sleep(3600)  # never: a refusal does not read again
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    first = sent[0]
    return str(first["type"]), int(first.get("status", 0))


def required_scopes(route: APIRoute) -> set[str]:
    """The scopes the route checks itself, and those its RequireScopes dependencies demand."""
    found: set[str] = set(getattr(route, "required_scopes", ()))
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, RequireScopes):
            found |= dependant.call.scopes
        stack.extend(dependant.dependencies)
    return found


@pytest.fixture
def all_in_one(make_settings: Callable[..., Settings]) -> Starlette:
    # Every private route gets six bad credentials from one address: lift the
    # failed-authentication throttle so it does not answer 429 first.
    limits = {**DEFAULT_RATE_LIMITS, "auth_failures": "100000/minute"}
    return build_all_in_one(make_settings(rate_limits=limits))


def test_every_mounted_app_is_walked(all_in_one: Starlette) -> None:
    routes = list(secure_routes(all_in_one))
    assert {r.route.path for r in routes} >= {"/admin/keys", "/admin/tenants", "/healthz"}


def test_public_routes_are_exactly_the_declared_ones(all_in_one: Starlette) -> None:
    public = {(r.mount, r.route.path) for r in secure_routes(all_in_one) if r.route.is_public}
    mounts = {r.mount for r in secure_routes(all_in_one)}
    expected = {(mount, path) for mount in mounts for path in EXPECTED_PUBLIC} | {
        (mount, path) for mount, paths in EXPECTED_PUBLIC_BY_MOUNT.items() for path in paths
    }
    assert public == expected


def test_every_private_route_requires_a_scope(all_in_one: Starlette) -> None:
    for walked in secure_routes(all_in_one):
        if not walked.route.is_public:
            assert required_scopes(walked.route), f"{walked.url} requires no scope"


async def test_every_private_route_denies_bad_credentials(all_in_one: Starlette) -> None:
    async with running(all_in_one) as client:
        platform = all_in_one.state.platform
        _, revoked = await issue_key(platform, tenant="walk", scopes=["content:read"])
        async with unit_of_work(platform.sessionmaker) as session:
            await service.revoke_key(
                session,
                tenant_id=revoked.key.tenant_id,
                key_id=revoked.key.id,
                invalidate=platform.key_verifier.invalidate,
            )
        _, expiring = await issue_key(
            platform, tenant="walk", scopes=["content:read"], expires_in=timedelta(seconds=1)
        )
        await asyncio.sleep(1.1)
        credentials = {
            "no key": {},
            "malformed key": auth(MALFORMED_KEY),
            "garbage bearer": {"Authorization": "Bearer not-a-key"},
            "revoked key": auth(revoked.secret),
            "expired key": auth(expiring.secret),
            "forged internal token": {"X-Xynergy-Internal-Token": "v1.e30.c2ln"},
        }
        checked = 0
        for walked in secure_routes(all_in_one):
            if walked.route.is_public:
                continue
            for label, headers in credentials.items():
                response = await client.request(walked.method, walked.url, headers=headers)
                assert response.status_code == 401, (walked.url, label, response.text)
                body = response.json()
                assert error_code(body) == "unauthorized"
                assert error_request_id_matches(body, response.headers["x-request-id"])
            checked += 1
        assert checked >= 5


async def test_every_private_route_forbids_a_key_without_its_scopes(all_in_one: Starlette) -> None:
    async with running(all_in_one) as client:
        platform = all_in_one.state.platform
        for walked in secure_routes(all_in_one):
            if walked.route.is_public:
                continue
            needed = required_scopes(walked.route)
            # A valid key of the same tenant holding some other scope.
            other = sorted({"content:read", "metrics:read"} - needed)[0]
            _, key = await issue_key(platform, tenant="walk", scopes=[other])
            response = await client.request(walked.method, walked.url, headers=auth(key.secret))
            assert response.status_code == 403, (walked.url, response.text)
            assert error_code(response.json()) == "forbidden"


async def test_every_websocket_route_refuses_bad_credentials_before_accept(
    all_in_one: Starlette,
) -> None:
    async with running(all_in_one):
        platform = all_in_one.state.platform
        _, revoked = await issue_key(platform, tenant="walk", scopes=["workflows:read"])
        async with unit_of_work(platform.sessionmaker) as session:
            await service.revoke_key(
                session,
                tenant_id=revoked.key.tenant_id,
                key_id=revoked.key.id,
                invalidate=platform.key_verifier.invalidate,
            )
        credentials = {
            "no key": {},
            "malformed key": auth(MALFORMED_KEY),
            "revoked key": auth(revoked.secret),
            "forged internal token": {"X-Xynergy-Internal-Token": "v1.e30.c2ln"},
        }
        walked = list(websocket_routes(all_in_one))
        assert walked, "no WebSocket route was walked"
        for url, route in walked:
            assert route.required_scopes, f"{url} requires no scope"
            for label, headers in credentials.items():
                answer = await upgrade_answer(all_in_one, url, headers)
                assert answer == ("websocket.http.response.start", 401), (url, label)
            other = sorted({"content:read", "metrics:read"} - route.required_scopes)[0]
            _, key = await issue_key(platform, tenant="walk", scopes=[other])
            answer = await upgrade_answer(all_in_one, url, auth(key.secret))
            assert answer == ("websocket.http.response.start", 403), url


def test_a_plain_apiroute_cannot_be_mounted(make_settings: Callable[..., Settings]) -> None:
    from fastapi import APIRouter

    sneaky = APIRouter()

    @sneaky.get("/sneaky")
    async def sneaky_endpoint() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="not a SecureRoute"):
        create_service_app(slug="x", title="x", settings=make_settings(), routers=[sneaky])


async def test_the_walk_would_catch_an_unscoped_route(
    make_settings: Callable[..., Settings],
) -> None:
    router = api_router()

    @router.get("/unscoped")
    async def unscoped() -> dict[str, str]:
        return {}

    @router.get("/open")
    @public
    async def opened() -> dict[str, str]:
        return {}

    app = create_service_app(slug="x", title="x", settings=make_settings(), routers=[router])
    root = Starlette(routes=[Mount("/x", app=app)])
    routes = {w.route.path: w.route for w in secure_routes(root)}
    assert required_scopes(routes["/unscoped"]) == set()
    assert routes["/open"].is_public
    assert {p for p, r in routes.items() if r.is_public} != EXPECTED_PUBLIC


def test_an_unknown_rate_limit_class_is_refused_at_build(
    make_settings: Callable[..., Settings],
) -> None:
    from xynergy.platform.routing import rate_limit

    router = api_router()

    @router.get("/typo")
    @rate_limit("raeds")
    async def typo() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="raeds"):
        create_service_app(slug="x", title="x", settings=make_settings(), routers=[router])
