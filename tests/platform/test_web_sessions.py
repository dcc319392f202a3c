"""Browser sign-in: ``POST/GET/DELETE /session`` and the cookie in place of a key.

Against the ASO Engine's real routes (and the all-in-one server for the mounted
case), on SQLite and PostgreSQL. CSRF and Origin checks: test_web_session_csrf.py;
revocation, expiry, replicas and upkeep: test_web_session_lifecycle.py.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import func, select

from tests.helpers import auth, issue_key, metric_value, running, scrape
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.keys import generate_key, hash_key
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.routing import api_router, public
from xynergy.platform.runtime import Platform
from xynergy.platform.web_sessions import SESSION_COOKIE, current_session
from xynergy.platform.web_sessions.csrf import csrf_token_for
from xynergy.platform.web_sessions.models import WebSession
from xynergy.server import build_all_in_one

READ_WRITE = ("content:read", "content:write")
COOKIE_ATTRIBUTES = re.compile(
    rf"^{SESSION_COOKIE}=([A-Za-z0-9_-]{{43}}); HttpOnly; SameSite=Strict; Path=/$"
)


# --- helpers shared by the test_web_session*.py files ------------------------------


async def sign_in(
    client: httpx.AsyncClient, secret: str, *, prefix: str = "", **kwargs: Any
) -> tuple[str, dict[str, Any]]:
    """Sign in with ``secret``: (the cookie's token, the body). The client keeps no
    cookie: each test sends the one it means to (``cookie()``)."""
    response = await client.post(prefix + "/session", json={"api_key": secret}, **kwargs)
    assert response.status_code == 201, response.text
    match = re.match(rf"{SESSION_COOKIE}=([A-Za-z0-9_-]{{43}});", response.headers["set-cookie"])
    assert match is not None, response.headers["set-cookie"]
    client.cookies.clear()
    return match.group(1), response.json()


def cookie(token: str, **headers: str) -> dict[str, str]:
    """Headers presenting session ``token`` as the browser does."""
    return {"Cookie": f"other=1; {SESSION_COOKIE}={token}", **headers}


async def session_rows(platform: Platform) -> int:
    async with platform.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(WebSession)) or 0)


def content(title: str = "Hello") -> dict[str, Any]:
    return {"title": title, "author": "Ann"}


@pytest.fixture
def settings(make_settings: Callable[..., Settings], database_url: str) -> Settings:
    return make_settings(database_url=database_url)


@pytest.fixture
def aso(settings: Settings) -> FastAPI:
    return create_aso_engine_app(settings)


async def issue(
    platform: Platform, scopes: Sequence[str] = READ_WRITE, tenant: str = "acme"
) -> str:
    return (await issue_key(platform, tenant=tenant, scopes=scopes))[1].secret


# --- POST /session ----------------------------------------------------------------


class TestSignIn:
    async def test_the_cookie_has_exactly_the_documented_attributes(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            tenant_id, issued = await issue_key(
                aso.state.platform, scopes=["content:write", "content:read"]
            )
            response = await client.post("/session", json={"api_key": issued.secret})
            assert response.status_code == 201, response.text
            set_cookies = response.headers.get_list("set-cookie")
            assert len(set_cookies) == 1
            match = COOKIE_ATTRIBUTES.match(set_cookies[0])
            assert match is not None, set_cookies[0]
            token = match.group(1)
            body = response.json()
            assert set(body) == {"tenant_id", "key_id", "scopes", "expires_at", "csrf_token"}
            assert body["tenant_id"] == tenant_id
            assert body["key_id"] == issued.key.id
            assert body["scopes"] == ["content:read", "content:write"]
            assert body["csrf_token"] == csrf_token_for(token)
            assert response.headers["cache-control"] == "no-store"

    async def test_only_hashes_are_stored(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            secret = await issue(platform)
            token, _ = await sign_in(client, secret)
            async with platform.sessionmaker() as session:
                row = (await session.scalars(select(WebSession))).one()
            assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
            assert row.key_hash == hash_key(secret)
            stored = " ".join(str(getattr(row, column)) for column in WebSession.__table__.c.keys())
            assert secret not in stored
            assert token not in stored

    @pytest.mark.parametrize(
        ("base_url", "extra", "overrides", "secure"),
        [
            ("https://testserver", {}, {}, True),
            ("http://testserver", {}, {}, False),
            ("http://testserver", {"X-Forwarded-Proto": "https"}, {}, False),
            (
                "http://testserver",
                {"X-Forwarded-Proto": "https"},
                {"trusted_proxies": ["127.0.0.1/32"]},
                True,
            ),
            ("http://testserver", {}, {"web_session_cookie_secure": "always"}, True),
            ("https://testserver", {}, {"web_session_cookie_secure": "never"}, False),
        ],
        ids=["https", "http", "untrusted-forwarded", "trusted-forwarded", "always", "never"],
    )
    async def test_the_cookie_is_secure_when_the_request_is_https(
        self,
        make_settings: Callable[..., Settings],
        base_url: str,
        extra: dict[str, str],
        overrides: dict[str, Any],
        secure: bool,
    ) -> None:
        app = create_aso_engine_app(make_settings(**overrides))
        async with running(app) as client:
            secret = await issue(app.state.platform)
            response = await client.post(
                base_url + "/session",
                json={"api_key": secret},
                headers={"Host": "testserver", **extra},
            )
            assert response.status_code == 201, response.text
            attributes = response.headers["set-cookie"].split("; ")
            assert ("Secure" in attributes) is secure
            assert attributes[1:4] == ["HttpOnly", "SameSite=Strict", "Path=/"]

    @pytest.mark.parametrize("kind", ["unknown", "malformed", "revoked", "expired", "short"])
    async def test_a_bad_key_is_refused_and_nothing_is_written(
        self, aso: FastAPI, kind: str
    ) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            secret = await _bad_key(platform, kind)
            response = await client.post("/session", json={"api_key": secret})
            assert response.status_code == 401, response.text
            body = response.json()
            assert set(body) == {"error", "detail", "request_id"}
            assert body["error"] == "unauthorized"
            assert "set-cookie" not in response.headers
            assert await session_rows(platform) == 0
            failures = metric_value(
                scrape(platform), "xynergy_auth_failures_total", service="aso-engine", status="401"
            )
            assert failures == 1

    async def test_failed_sign_ins_spend_the_failed_authentication_budget(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        limits = {**DEFAULT_RATE_LIMITS, "auth_failures": "2/minute"}
        app = create_aso_engine_app(make_settings(rate_limits=limits))
        async with running(app) as client:
            statuses = [
                (
                    await client.post("/session", json={"api_key": generate_key().plaintext})
                ).status_code
                for _ in range(3)
            ]
            assert statuses == [401, 401, 429]

    async def test_an_oversized_key_is_refused_before_anything_reads_it(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            response = await client.post("/session", json={"api_key": "x" * 129})
            assert response.status_code == 422, response.text
            assert await session_rows(aso.state.platform) == 0
            extra = await client.post("/session", json={"api_key": "x", "tenant_id": "y"})
            assert extra.status_code == 422

    async def test_sign_ins_have_their_own_rate_class(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        limits = {**DEFAULT_RATE_LIMITS, "sign_in": "2/minute"}
        app = create_aso_engine_app(make_settings(rate_limits=limits))
        async with running(app) as client:
            secret = await issue(app.state.platform)
            statuses = [
                (await client.post("/session", json={"api_key": secret})).status_code
                for _ in range(3)
            ]
            assert statuses == [201, 201, 429]
            # Other routes of the address and key are not affected.
            assert (await client.get("/api/content", headers=auth(secret))).status_code == 200


async def _bad_key(platform: Platform, kind: str) -> str:
    from datetime import timedelta

    from xynergy.platform.db.session import unit_of_work
    from xynergy.platform.tenancy import service

    if kind == "unknown":
        return generate_key().plaintext
    if kind == "malformed":
        return "xyn_live_" + "A" * 49
    if kind == "short":
        return "xyn_live_abc"
    if kind == "expired":
        _, issued = await issue_key(platform, scopes=READ_WRITE, expires_in=timedelta(seconds=-1))
        return issued.secret
    _, issued = await issue_key(platform, scopes=READ_WRITE)
    async with unit_of_work(platform.sessionmaker) as session:
        await service.revoke_key(
            session,
            tenant_id=issued.key.tenant_id,
            key_id=issued.key.id,
            invalidate=platform.key_verifier.invalidate,
        )
    return issued.secret


# --- the cookie on every route ------------------------------------------------------


class TestTheCookieAuthenticates:
    async def test_a_cookie_reads_a_service_route(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            secret = await issue(aso.state.platform)
            created = await client.post("/api/content", json=content(), headers=auth(secret))
            assert created.status_code == 201, created.text
            token, _ = await sign_in(client, secret)
            listed = await client.get("/api/content", headers=cookie(token))
            assert listed.status_code == 200, listed.text
            assert [item["title"] for item in listed.json()["items"]] == ["Hello"]
            # Without the cookie the same request is refused: the cookie did it.
            assert (await client.get("/api/content")).status_code == 401

    async def test_a_made_up_or_malformed_cookie_is_refused(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            for token in ("A" * 43, "short", "A" * 44, "!" * 43):
                response = await client.get("/api/content", headers=cookie(token))
                assert response.status_code == 401, token
                assert response.json()["error"] == "unauthorized"

    async def test_the_key_scopes_still_apply(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            secret = await issue(aso.state.platform, scopes=["keywords:read"])
            token, _ = await sign_in(client, secret)
            response = await client.get("/api/content", headers=cookie(token))
            assert response.status_code == 403, response.text

    async def test_an_authorization_header_wins_over_the_cookie(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            token, _ = await sign_in(client, await issue(platform))
            other = await issue(platform, scopes=["keywords:read"])
            # A key without content:read: the header was used, not the cookie.
            with_key = await client.get("/api/content", headers=cookie(token, **auth(other)))
            assert with_key.status_code == 403, with_key.text
            # A bad key is refused even beside a good cookie.
            with_bad = await client.get(
                "/api/content", headers=cookie(token, **auth(generate_key().plaintext))
            )
            assert with_bad.status_code == 401, with_bad.text
            x_api_key = await client.get(
                "/api/content", headers=cookie(token, **{"X-API-Key": other})
            )
            assert x_api_key.status_code == 403, x_api_key.text

    async def test_one_sign_in_works_for_every_mounted_service(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        server = build_all_in_one(make_settings(database_url=database_url))
        async with running(server) as client:
            platform = server.state.platform
            secret = await issue(platform, scopes=[*READ_WRITE, "assistant:chat"])
            token, body = await sign_in(client, secret, prefix="/ai-assistant")
            aso_list = await client.get("/aso-engine/api/content", headers=cookie(token))
            assert aso_list.status_code == 200, aso_list.text
            conversations = await client.get(
                "/ai-assistant/api/conversations", headers=cookie(token)
            )
            assert conversations.status_code == 200, conversations.text
            for prefix in ("", "/aso-engine", "/ai-assistant", "/system-runtime"):
                read = await client.get(prefix + "/session", headers=cookie(token))
                assert read.status_code == 200, (prefix, read.text)
                assert read.json() == body
            # A write through another mount, with the session's CSRF token.
            created = await client.post(
                "/aso-engine/api/content",
                json=content(),
                headers=cookie(token, **{"X-CSRF-Token": body["csrf_token"]}),
            )
            assert created.status_code == 201, created.text


# --- GET /session and DELETE /session ----------------------------------------------


class TestReadSession:
    async def test_the_cookie_gets_the_sign_in_body_back(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            token, body = await sign_in(client, await issue(aso.state.platform))
            response = await client.get("/session", headers=cookie(token))
            assert response.status_code == 200, response.text
            assert response.json() == body
            assert response.headers["cache-control"] == "no-store"
            assert "set-cookie" not in response.headers

    async def test_without_a_session_it_is_401(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            secret = await issue(aso.state.platform)
            for headers in ({}, auth(secret), cookie("B" * 43)):
                response = await client.get("/session", headers=headers)
                assert response.status_code == 401, headers
                assert set(response.json()) == {"error", "detail", "request_id"}


class TestSignOut:
    async def test_sign_out_ends_the_session_and_clears_the_cookie(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            token, body = await sign_in(client, await issue(platform))
            response = await client.delete(
                "/session", headers=cookie(token, **{"X-CSRF-Token": body["csrf_token"]})
            )
            assert response.status_code == 204, response.text
            assert response.headers["set-cookie"] == (
                f"{SESSION_COOKIE}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
                "HttpOnly; SameSite=Strict; Path=/"
            )
            assert await session_rows(platform) == 0
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 401
            assert (await client.get("/session", headers=cookie(token))).status_code == 401

    async def test_sign_out_needs_the_csrf_token(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            platform = aso.state.platform
            token, _ = await sign_in(client, await issue(platform))
            for extra in ({}, {"X-CSRF-Token": "0" * 64}):
                response = await client.delete("/session", headers=cookie(token, **extra))
                assert response.status_code == 403, response.text
                assert response.json()["error"] == "csrf_failed"
            assert await session_rows(platform) == 1
            assert (await client.get("/api/content", headers=cookie(token))).status_code == 200

    async def test_sign_out_without_a_cookie_is_401(self, aso: FastAPI) -> None:
        async with running(aso) as client:
            assert (await client.delete("/session")).status_code == 401


class TestBounds:
    async def test_a_key_keeps_only_its_newest_sessions(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        app = create_aso_engine_app(
            make_settings(database_url=database_url, web_session_max_per_key=3)
        )
        async with running(app) as client:
            platform = app.state.platform
            secret = await issue(platform)
            other = await issue(platform, tenant="globex")
            tokens = [(await sign_in(client, secret))[0] for _ in range(5)]
            other_token, _ = await sign_in(client, other)
            assert await session_rows(platform) == 4
            statuses = [
                (await client.get("/api/content", headers=cookie(token))).status_code
                for token in tokens
            ]
            assert statuses == [401, 401, 200, 200, 200]
            assert (
                await client.get("/api/content", headers=cookie(other_token))
            ).status_code == 200


# --- for pages: current_session(request) ------------------------------------------


def _page_app(settings: Settings) -> FastAPI:
    router = api_router()

    @router.get("/page")
    @public
    async def page(request: Request) -> dict[str, Any]:
        signed_in = await current_session(request)
        if signed_in is None:
            return {"signed_in": False}
        return {"signed_in": True, "tenant_id": signed_in.tenant_id, "csrf": signed_in.csrf_token}

    return create_service_app(slug="pages", title="pages", settings=settings, routers=[router])


class TestCurrentSession:
    async def test_a_page_sees_the_session_or_none(self, settings: Settings) -> None:
        app = _page_app(settings)
        async with running(app) as client:
            platform = app.state.platform
            tenant_id, issued = await issue_key(platform, scopes=["content:read"])
            assert (await client.get("/page")).json() == {"signed_in": False}
            assert (await client.get("/page", headers=cookie("C" * 43))).json() == {
                "signed_in": False
            }
            token, body = await sign_in(client, issued.secret)
            assert (await client.get("/page", headers=cookie(token))).json() == {
                "signed_in": True,
                "tenant_id": tenant_id,
                "csrf": body["csrf_token"],
            }
