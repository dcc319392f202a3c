"""Forgery defences of cookie-authenticated requests: X-CSRF-Token and Origin.

A cookie-authenticated POST, PATCH or DELETE needs the session's CSRF token and,
when the browser says where it comes from, this origin; a refusal writes nothing.
Requests with a key in a header are unaffected. A WebSocket handshake with the
cookie must come from this origin.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, running
from tests.platform.test_route_walk import upgrade_answer
from tests.platform.test_web_sessions import READ_WRITE, content, cookie, session_rows, sign_in
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.models import ContentPiece
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

CSRF = "X-CSRF-Token"
OWN_ORIGIN = "http://testserver"
FOREIGN_ORIGINS = [
    "https://evil.example",
    "null",
    "http://testserver.evil.example",
    "https://testserver",
]


@pytest.fixture
def aso(make_settings: Callable[..., Settings], database_url: str) -> FastAPI:
    return create_aso_engine_app(make_settings(database_url=database_url))


async def content_rows(platform: Platform) -> int:
    async with platform.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ContentPiece)) or 0)


async def signed_in(app: FastAPI, client: object) -> tuple[str, str, str]:
    """(key secret, session token, CSRF token) of a content:read/write key."""
    _, issued = await issue_key(app.state.platform, scopes=READ_WRITE)
    token, body = await sign_in(client, issued.secret)  # type: ignore[arg-type]
    return issued.secret, token, body["csrf_token"]


class TestCsrfToken:
    @pytest.mark.parametrize("presented", [None, "", "0" * 64, "wrong"])
    async def test_a_write_without_the_right_token_is_refused_and_writes_nothing(
        self, aso: FastAPI, presented: str | None
    ) -> None:
        async with running(aso) as client:
            _, token, _ = await signed_in(aso, client)
            headers = cookie(token) if presented is None else cookie(token, **{CSRF: presented})
            response = await client.post("/api/content", json=content(), headers=headers)
            assert response.status_code == 403, response.text
            body = response.json()
            assert set(body) == {"error", "detail", "request_id"}
            assert body["error"] == "csrf_failed"
            assert await content_rows(aso.state.platform) == 0

    async def test_another_sessions_token_is_refused(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            _, token, _ = await signed_in(aso, client)
            _, _, other_csrf = await signed_in(aso, client)
            response = await client.post(
                "/api/content", json=content(), headers=cookie(token, **{CSRF: other_csrf})
            )
            assert response.status_code == 403, response.text
            assert await content_rows(aso.state.platform) == 0

    async def test_the_right_token_writes(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            _, token, csrf = await signed_in(aso, client)
            response = await client.post(
                "/api/content", json=content(), headers=cookie(token, **{CSRF: csrf})
            )
            assert response.status_code == 201, response.text
            assert await content_rows(aso.state.platform) == 1

    async def test_patch_and_delete_need_it_too(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            secret, token, csrf = await signed_in(aso, client)
            created = await client.post("/api/content", json=content(), headers=auth(secret))
            url = "/api/content/" + created.json()["id"]
            patched = await client.patch(url, json={"title": "Changed"}, headers=cookie(token))
            assert patched.status_code == 403, patched.text
            deleted = await client.delete(url, headers=cookie(token))
            assert deleted.status_code == 403, deleted.text
            read = await client.get(url, headers=cookie(token))
            assert read.status_code == 200
            assert read.json()["title"] == "Hello"
            patched = await client.patch(
                url, json={"title": "Changed"}, headers=cookie(token, **{CSRF: csrf})
            )
            assert patched.status_code == 200, patched.text
            deleted = await client.delete(url, headers=cookie(token, **{CSRF: csrf}))
            assert deleted.status_code == 204, deleted.text

    async def test_reads_need_no_token(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            _, token, _ = await signed_in(aso, client)
            response = await client.get(
                "/api/content", headers=cookie(token, Origin="https://evil.example")
            )
            assert response.status_code == 200, response.text

    async def test_a_key_in_a_header_needs_no_token(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            secret, _, _ = await signed_in(aso, client)
            response = await client.post(
                "/api/content",
                json=content(),
                headers={**auth(secret), "Origin": "https://evil.example"},
            )
            assert response.status_code == 201, response.text


class TestOrigin:
    @pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
    async def test_a_write_from_another_origin_is_refused_even_with_the_token(
        self, aso: FastAPI, origin: str
    ) -> None:
        async with running(aso) as client:
            _, token, csrf = await signed_in(aso, client)
            response = await client.post(
                "/api/content", json=content(), headers=cookie(token, **{CSRF: csrf}, Origin=origin)
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "csrf_failed"
            assert await content_rows(aso.state.platform) == 0

    async def test_a_write_from_this_origin_passes(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            _, token, csrf = await signed_in(aso, client)
            response = await client.post(
                "/api/content",
                json=content(),
                headers=cookie(token, **{CSRF: csrf}, Origin=OWN_ORIGIN),
            )
            assert response.status_code == 201, response.text

    async def test_https_behind_a_trusted_proxy_is_this_origin(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = create_aso_engine_app(make_settings(trusted_proxies=["127.0.0.1/32"]))
        async with running(app) as client:
            _, token, csrf = await signed_in(app, client)
            forwarded = {CSRF: csrf, "X-Forwarded-Proto": "https"}
            good = await client.post(
                "/api/content",
                json=content(),
                headers=cookie(token, **forwarded, Origin="https://testserver"),
            )
            assert good.status_code == 201, good.text
            bad = await client.post(
                "/api/content",
                json=content(),
                headers=cookie(token, **forwarded, Origin=OWN_ORIGIN),
            )
            assert bad.status_code == 403, bad.text

    @pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
    async def test_a_sign_in_from_another_origin_is_refused(
        self, aso: FastAPI, origin: str
    ) -> None:
        async with running(aso) as client:
            _, issued = await issue_key(aso.state.platform, scopes=READ_WRITE)
            response = await client.post(
                "/session", json={"api_key": issued.secret}, headers={"Origin": origin}
            )
            assert response.status_code == 403, response.text
            assert response.json()["error"] == "csrf_failed"
            assert "set-cookie" not in response.headers
            assert await session_rows(aso.state.platform) == 0


class TestWebSocket:
    async def test_a_cookie_handshake_must_come_from_this_origin(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        server = build_all_in_one(make_settings())
        async with running(server) as client:
            _, issued = await issue_key(server.state.platform, scopes=["workflows:read"])
            token, _ = await sign_in(client, issued.secret)
            url = "/system-runtime/ws/workflows/" + "0" * 32
            base = {"host": "testserver", **{k.lower(): v for k, v in cookie(token).items()}}
            refused = await upgrade_answer(server, url, {**base, "origin": "https://evil.example"})
            assert refused == ("websocket.http.response.start", 403)
            # From this origin (or a client sending none) the cookie authenticates:
            # the unknown run is what is refused then.
            for headers in ({**base, "origin": OWN_ORIGIN}, base):
                answer = await upgrade_answer(server, url, headers)
                assert answer == ("websocket.http.response.start", 404), headers
            # Without the cookie: not authenticated at all.
            assert await upgrade_answer(server, url, {"host": "testserver"}) == (
                "websocket.http.response.start",
                401,
            )
