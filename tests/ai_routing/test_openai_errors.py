"""Every error answered under ``/v1`` is in OpenAI's shape, wherever it is raised;
the rest of the service keeps the platform's."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.ai_routing.gateway import gateway
from tests.helpers import auth, issue_key, running
from xynergy.ai_routing.app import SLUG, create_ai_routing_app
from xynergy.ai_routing.openai_compat.errors import OPENAI_ERRORS, openai_error_type
from xynergy.platform.app import walk_routes
from xynergy.platform.config import Settings
from xynergy.platform.error_shapes import PLATFORM_ERRORS, shape_errors_under
from xynergy.platform.routing import SecureRoute, api_router, shaped_errors
from xynergy.server import build_all_in_one

pytestmark = pytest.mark.asyncio

CHAT = "/v1/chat/completions"
PLATFORM_FIELDS = {"error", "detail", "request_id"}
OPENAI_FIELDS = {"message", "type", "param", "code"}


def openai_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The OpenAI-shaped error of ``response``, checked; its ``error`` object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == OPENAI_FIELDS
    assert error["code"] == code
    assert error["param"] is None
    request_id = response.headers["X-Request-ID"]
    assert error["message"].endswith(f" (request id: {request_id})")
    return error


def platform_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == PLATFORM_FIELDS
    assert body["error"] == code
    assert body["request_id"] == response.headers["X-Request-ID"]


def chat_body(content: Any = "hello") -> dict[str, Any]:
    return {"model": "xynergy-offline", "messages": [{"role": "user", "content": content}]}


class TestWithoutARoute:
    @pytest.mark.parametrize("path", ["/v1/nope", "/v1", "/v1/chat/completions/extra"])
    async def test_an_unknown_path_under_v1_is_an_openai_404(
        self, make_settings: Callable[..., Settings], path: str
    ) -> None:
        async with gateway(make_settings()) as gw:
            response = await gw.client.get(path, headers=gw.headers)
        error = openai_error(response, 404, "not_found")
        assert error["type"] == "invalid_request_error"

    async def test_a_wrong_method_on_a_v1_path_is_an_openai_405(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            response = await gw.client.get(CHAT, headers=gw.headers)
        openai_error(response, 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]

    async def test_paths_outside_v1_keep_the_platform_shape(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            unknown = await gw.client.get("/v1x/nope", headers=gw.headers)
            anonymous = await gw.client.get("/api/usage")
        platform_error(unknown, 404, "not_found")
        platform_error(anonymous, 401, "unauthorized")


class TestBeforeTheEndpoint:
    async def test_a_missing_key_is_an_openai_401(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings()) as gw:
            response = await gw.client.post(CHAT, json=chat_body())
        openai_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == "Bearer"

    async def test_hostile_text_is_an_openai_422(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        raw = httpx.Request("POST", "/", json=chat_body("x")).content
        body = raw.replace(b'"x"', b'"\\ud800"')
        async with gateway(make_settings()) as gw:
            response = await gw.client.post(
                CHAT, content=body, headers={**gw.headers, "Content-Type": "application/json"}
            )
        error = openai_error(response, 422, "validation_failed")
        assert "surrogate" in error["message"]

    async def test_a_declared_body_over_the_limit_is_an_openai_413(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async with gateway(make_settings(max_body_bytes=1024)) as gw:
            response = await gw.client.post(CHAT, json=chat_body("x" * 2048), headers=gw.headers)
        error = openai_error(response, 413, "payload_too_large")
        assert "1024" in error["message"]

    async def test_a_streamed_body_over_the_limit_is_an_openai_413(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"model": "xynergy-offline", "messages": [{"role": "user", "content": "'
            for _ in range(8):
                yield b"x" * 256
            yield b'"}]}'

        async with gateway(make_settings(max_body_bytes=1024)) as gw:
            response = await gw.client.post(
                CHAT, content=chunks(), headers={**gw.headers, "Content-Type": "application/json"}
            )
        openai_error(response, 413, "payload_too_large")


class TestAfterTheEndpointStarted:
    async def test_an_unexpected_failure_is_an_openai_500_without_internals(
        self, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("secret internals")

        async with gateway(make_settings()) as gw:
            monkeypatch.setattr(gw.engine.router, "complete", broken)
            response = await gw.chat(headers={"Cache-Control": "no-cache"})
        error = openai_error(response, 500, "internal_error")
        assert error["type"] == "server_error"
        assert "secret" not in response.text

    async def test_a_stream_error_event_has_the_same_shape(
        self, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from xynergy.ai_routing.providers.base import TextDelta

        async def fails_midway(*_args: object, **_kwargs: object) -> AsyncIterator[object]:
            yield TextDelta("partial ")
            raise RuntimeError("secret internals")

        async with gateway(make_settings()) as gw:
            monkeypatch.setattr(gw.engine.router, "stream", fails_midway)
            response = await gw.chat(stream=True)
        assert response.status_code == 200
        last = [line for line in response.text.splitlines() if line.startswith("data: ")][-1]
        error = httpx.Response(200, content=last.removeprefix("data: ")).json()["error"]
        assert set(error) == OPENAI_FIELDS
        assert (error["type"], error["code"]) == ("server_error", "internal_error")
        assert error["message"].endswith(f"(request id: {response.headers['X-Request-ID']})")
        assert "secret" not in response.text


class TestAllInOne:
    @pytest.fixture
    async def mounted(self, make_settings: Callable[..., Settings]) -> AsyncIterator[Any]:
        root = build_all_in_one(make_settings(), {SLUG: create_ai_routing_app})
        async with running(root) as client:
            yield root, client

    async def test_the_mount_prefix_does_not_change_the_shape(self, mounted: Any) -> None:
        root, client = mounted
        _, issued = await issue_key(root.state.platform, tenant="acme", scopes=("ai:usage",))
        headers = auth(issued.secret)
        unknown = await client.get(f"/{SLUG}/v1/nope", headers=headers)
        forbidden = await client.post(f"/{SLUG}{CHAT}", json=chat_body(), headers=headers)
        usage = await client.get(f"/{SLUG}/api/usage")
        openai_error(unknown, 404, "not_found")
        openai_error(forbidden, 403, "forbidden")
        platform_error(usage, 401, "unauthorized")


class TestDeclaredShapes:
    async def test_every_v1_route_renders_openai_errors_and_no_other_does(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = create_ai_routing_app(make_settings())
        routes = [r for r in walk_routes(app.routes) if isinstance(r, SecureRoute)]
        v1 = {r.path for r in routes if r.error_shape is OPENAI_ERRORS}
        assert v1 == {r.path for r in routes if r.path.startswith("/v1/")}
        assert v1 >= {CHAT, "/v1/models"}
        assert all(r.error_shape is PLATFORM_ERRORS for r in routes if r.path not in v1)

    async def test_a_route_under_a_shaped_prefix_must_carry_the_shape(self) -> None:
        router = api_router(prefix="/v1")

        @router.get("/shaped")
        @shaped_errors(OPENAI_ERRORS)
        async def shaped() -> None: ...

        @router.get("/forgotten")
        async def forgotten() -> None: ...

        app = FastAPI()
        app.router.routes.extend(router.routes)
        with pytest.raises(ValueError, match="/v1/forgotten"):
            shape_errors_under(app, "/v1", OPENAI_ERRORS)


class TestErrorTypes:
    @pytest.mark.parametrize(
        ("status", "expected"),
        [
            (400, "invalid_request_error"),
            (401, "invalid_request_error"),
            (403, "invalid_request_error"),
            (404, "invalid_request_error"),
            (413, "invalid_request_error"),
            (422, "invalid_request_error"),
            (402, "insufficient_quota"),
            (429, "rate_limit_error"),
            (500, "server_error"),
            (503, "service_unavailable_error"),
            (504, "server_error"),
        ],
    )
    async def test_the_type_is_openais_for_the_status(self, status: int, expected: str) -> None:
        assert openai_error_type(status) == expected
        assert expected in OPENAI_ERRORS.schema["properties"]["error"]["properties"]["type"]["enum"]
