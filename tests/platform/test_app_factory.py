"""What ``create_service_app`` gives every service by construction.

Request ids, security headers, strict CORS, the body-size limit, the one error
shape, probes and metrics — each observed through real requests against a small
service built the way every service is built.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

import httpx
import pytest
import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tests.helpers import auth, issue_key, metric_value, running, scrape
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound
from xynergy.platform.logging import configure_logging
from xynergy.platform.routing import api_router
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.repository import TenantRepository

MakeSettings = Callable[..., Settings]

SLUG = "svc"
ALLOWED_ORIGIN = "https://app.example.com"
MAX_BODY_BYTES = 2048
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
INTERNAL_ERROR_TEXT = "kaboom: the ledger row 42 is corrupt"

ReadAuth = Annotated[AuthContext, Depends(require_scopes("content:read"))]
WriteAuth = Annotated[AuthContext, Depends(require_scopes("content:write"))]
ItemId = Annotated[str, Path(min_length=1, max_length=32)]


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=50)
    quantity: int = Field(ge=0, le=1000)


def items_router() -> APIRouter:
    router = api_router()

    @router.get("/items/{item_id}")
    async def get_item(item_id: ItemId, _auth: ReadAuth) -> dict[str, str]:
        """One item; ``missing`` does not exist."""
        if item_id == "missing":
            raise NotFound("No such item.")
        return {"id": item_id}

    @router.post("/items", status_code=201)
    async def create_item(body: ItemCreate, _auth: WriteAuth) -> dict[str, Any]:
        """Echo a valid item."""
        return body.model_dump()

    @router.get("/explode")
    async def explode(request: Request, _auth: ReadAuth) -> dict[str, str]:
        """A bug: an exception whose text carries internals and a credential."""
        raise RuntimeError(f"{INTERNAL_ERROR_TEXT}; sent {request.headers.get('authorization')}")

    return router


def service_app(settings: Settings) -> FastAPI:
    return create_service_app(slug=SLUG, title=SLUG, settings=settings, routers=[items_router()])


async def items_key(platform: Platform) -> str:
    _, issued = await issue_key(platform, scopes=["content:read", "content:write"])
    return issued.secret


async def tenant_named(platform: Platform, name: str) -> bool:
    async with unit_of_work(platform.sessionmaker) as session:
        return await TenantRepository(session).get_by_name(name) is not None


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == code
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(max_body_bytes=MAX_BODY_BYTES)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = service_app(settings)
    async with running(app) as client:
        client.headers.update(auth(await items_key(app.state.platform)))
        yield client


@pytest.fixture
def json_logging() -> Iterator[Callable[[], None]]:
    """Switches on the platform's JSON logging; restores logging afterwards.

    Call it inside the test: only there is ``sys.stdout`` the stream capsys reads.
    """
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    uvicorn_access = logging.getLogger("uvicorn.access")
    saved_disabled = uvicorn_access.disabled

    def start() -> None:
        configure_logging()
        # configure_logging caches each logger on first use together with the
        # stdout of that moment (capsys's, closed after this test); without
        # caching here no later test is left logging into a closed stream.
        structlog.configure(cache_logger_on_first_use=False)

    yield start
    structlog.reset_defaults()
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    uvicorn_access.disabled = saved_disabled


def log_entries(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


class TestRequestId:
    async def test_a_valid_id_is_echoed_in_the_header_and_error_body(
        self, client: httpx.AsyncClient
    ) -> None:
        ok = await client.get("/items/1", headers={"X-Request-ID": "abc-123.def:456_x"})
        denied = await client.get(
            "/items/1", headers={"X-Request-ID": "req-401", "Authorization": ""}
        )

        assert ok.headers["x-request-id"] == "abc-123.def:456_x"
        assert assert_error(denied, 401, "unauthorized")["request_id"] == "req-401"

    async def test_an_id_of_the_maximum_length_is_kept(self, client: httpx.AsyncClient) -> None:
        longest = "a" * 128

        response = await client.get("/healthz", headers={"X-Request-ID": longest})

        assert response.headers["x-request-id"] == longest

    async def test_a_missing_id_is_generated(self, client: httpx.AsyncClient) -> None:
        first = await client.get("/items/missing")
        second = await client.get("/items/missing")

        assert GENERATED_ID.fullmatch(first.headers["x-request-id"])
        assert first.json()["request_id"] == first.headers["x-request-id"]
        assert first.headers["x-request-id"] != second.headers["x-request-id"]

    @pytest.mark.parametrize(
        "unsafe",
        [
            pytest.param("has space", id="space"),
            pytest.param("line\nbreak", id="inner-newline"),
            pytest.param("trailing-newline\n", id="trailing-newline"),
            pytest.param("evil\r\nX-Injected: 1", id="header-injection"),
            pytest.param("a" * 129, id="too-long"),
        ],
    )
    async def test_an_unsafe_id_is_replaced(self, client: httpx.AsyncClient, unsafe: str) -> None:
        response = await client.get("/items/missing", headers={"X-Request-ID": unsafe})

        assert GENERATED_ID.fullmatch(response.headers["x-request-id"]), response.headers
        assert response.json()["request_id"] == response.headers["x-request-id"]
        assert "x-injected" not in response.headers

    async def test_the_access_log_line_carries_the_id_and_never_the_key(
        self,
        make_settings: MakeSettings,
        json_logging: Callable[[], None],
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        json_logging()
        app = service_app(make_settings(access_log=True))
        async with running(app) as client:
            secret = await items_key(app.state.platform)
            capsys.readouterr()
            await client.get(
                "/items/7",
                headers={"X-Request-ID": "log-ok", "X-API-Key": secret, **auth(secret)},
            )
            await client.get("/explode", headers={"X-Request-ID": "log-boom", **auth(secret)})
        output = capsys.readouterr().out

        entries = log_entries(output)
        access = [e for e in entries if e.get("event") == "request"]
        assert {(e["request_id"], e["route"], e["status"]) for e in access} == {
            ("log-ok", "/items/{item_id}", 200),
            ("log-boom", "/explode", 500),
        }
        crash = [e for e in entries if e.get("event") == "request.unhandled_error"]
        assert [e["request_id"] for e in crash] == ["log-boom"]
        assert INTERNAL_ERROR_TEXT in crash[0]["exception"]
        assert secret not in output
        assert secret[:20] not in output


class TestSecurityHeaders:
    async def test_on_success(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/items/1")

        assert response.status_code == 200
        assert_security_headers(response)

    async def test_on_unauthorized(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/items/1", headers={"Authorization": ""})

        assert_error(response, 401, "unauthorized")
        assert_security_headers(response)

    async def test_on_not_found(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/no/such/path")

        assert_error(response, 404, "not_found")
        assert_security_headers(response)

    async def test_on_payload_too_large(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/items", content=b"x" * (MAX_BODY_BYTES + 1))

        assert_error(response, 413, "payload_too_large")
        assert_security_headers(response)

    async def test_on_internal_error(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/explode")

        assert_error(response, 500, "internal_error")
        assert_security_headers(response)


def preflight(origin: str, method: str = "GET") -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": method}


class TestCors:
    @pytest.fixture
    def settings(self, make_settings: MakeSettings) -> Settings:
        return make_settings(cors_origins=[ALLOWED_ORIGIN])

    async def test_a_preflight_from_an_allowed_origin_gets_exactly_that_origin(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options("/items/1", headers=preflight(ALLOWED_ORIGIN))

        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        cors_values = [v for k, v in response.headers.items() if k.startswith("access-control-")]
        assert cors_values
        assert not any("*" in value for value in cors_values)
        assert "x-request-id" in response.headers

    async def test_a_simple_request_from_an_allowed_origin_gets_that_origin(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/items/1", headers={"Origin": ALLOWED_ORIGIN})

        assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
        assert "X-Request-ID" in response.headers["access-control-expose-headers"]

    async def test_a_preflight_from_another_origin_gets_no_allow_origin(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.options("/items/1", headers=preflight("https://evil.example.com"))

        assert response.status_code >= 400
        assert "access-control-allow-origin" not in response.headers

    async def test_a_simple_request_from_another_origin_gets_no_allow_origin(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/items/1", headers={"Origin": "https://evil.example.com"})

        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers

    async def test_without_configured_origins_no_cors_headers_are_sent(
        self, make_settings: MakeSettings
    ) -> None:
        app = service_app(make_settings())
        async with running(app) as client:
            secret = await items_key(app.state.platform)
            answered = [
                await client.options("/items/1", headers=preflight(ALLOWED_ORIGIN)),
                await client.get("/items/1", headers={"Origin": ALLOWED_ORIGIN, **auth(secret)}),
            ]

        for response in answered:
            assert not [k for k in response.headers if k.startswith("access-control-")]

    @pytest.mark.parametrize("field", ["cors_origins", "cors_methods", "cors_headers"])
    def test_a_wildcard_setting_is_refused(self, make_settings: MakeSettings, field: str) -> None:
        with pytest.raises(ValidationError, match="refused"):
            make_settings(**{field: ["*"]})


def padded_tenant(name: str, size: int) -> bytes:
    """A valid TenantCreate body of ``size`` bytes (JSON whitespace as padding)."""
    head, tail = b'{"name": "' + name.encode() + b'"', b"}"
    return head + b" " * (size - len(head) - len(tail)) + tail


async def streamed(body: bytes, chunk: int = 512) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


class TestBodyLimit:
    @pytest.fixture
    async def admin(
        self, make_settings: MakeSettings, database_url: str
    ) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
        app = create_admin_app(
            make_settings(database_url=database_url, max_body_bytes=MAX_BODY_BYTES)
        )
        async with running(app) as client:
            platform = app.state.platform
            _, issued = await issue_key(platform, tenant="platform", scopes=["admin"])
            client.headers.update({**auth(issued.secret), "Content-Type": "application/json"})
            yield client, platform

    async def test_a_declared_length_over_the_limit_is_refused_and_nothing_written(
        self, admin: tuple[httpx.AsyncClient, Platform]
    ) -> None:
        client, platform = admin

        response = await client.post(
            "/admin/tenants", content=padded_tenant("declared", MAX_BODY_BYTES + 1)
        )

        assert response.request.headers["content-length"] == str(MAX_BODY_BYTES + 1)
        assert_error(response, 413, "payload_too_large")
        assert not await tenant_named(platform, "declared")

    async def test_a_streamed_body_over_the_limit_is_refused_and_nothing_written(
        self, admin: tuple[httpx.AsyncClient, Platform]
    ) -> None:
        client, platform = admin

        response = await client.post(
            "/admin/tenants", content=streamed(padded_tenant("streamed", 3 * MAX_BODY_BYTES))
        )

        assert "content-length" not in response.request.headers
        assert_error(response, 413, "payload_too_large")
        assert not await tenant_named(platform, "streamed")

    async def test_a_body_at_the_limit_is_accepted(
        self, admin: tuple[httpx.AsyncClient, Platform]
    ) -> None:
        client, platform = admin

        response = await client.post(
            "/admin/tenants", content=padded_tenant("at-limit", MAX_BODY_BYTES)
        )

        assert response.status_code == 201, response.text
        assert await tenant_named(platform, "at-limit")

    async def test_a_streamed_body_under_the_limit_is_accepted(
        self, admin: tuple[httpx.AsyncClient, Platform]
    ) -> None:
        client, platform = admin

        response = await client.post(
            "/admin/tenants", content=streamed(padded_tenant("small-stream", 1500))
        )

        assert response.status_code == 201, response.text
        assert await tenant_named(platform, "small-stream")


class TestErrors:
    async def test_an_unknown_path_is_a_json_404(self, client: httpx.AsyncClient) -> None:
        assert_error(await client.get("/nowhere"), 404, "not_found")

    async def test_a_wrong_method_is_a_json_405(self, client: httpx.AsyncClient) -> None:
        response = await client.delete("/items/1")

        assert_error(response, 405, "method_not_allowed")
        assert response.headers["allow"] == "GET"

    async def test_invalid_json_is_a_400(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/items", content=b'{"name": "x", ', headers={"Content-Type": "application/json"}
        )

        assert_error(response, 400, "malformed_json")

    async def test_a_schema_violation_is_a_422_naming_the_field(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post("/items", json={"name": "widget", "quantity": 5000})

        body = assert_error(response, 422, "validation_failed")
        assert "body.quantity" in body["detail"]
        assert "body.name" not in body["detail"]

    async def test_an_unexpected_exception_is_an_opaque_500_and_serving_goes_on(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/explode")
        after = await client.get("/items/1")

        body = assert_error(response, 500, "internal_error")
        assert body["detail"] == "The server could not complete the request."
        assert "kaboom" not in response.text
        assert "Traceback" not in response.text
        assert "RuntimeError" not in response.text
        assert after.status_code == 200

    async def test_a_platform_error_renders_its_status_and_code(
        self, client: httpx.AsyncClient
    ) -> None:
        body = assert_error(await client.get("/items/missing"), 404, "not_found")

        assert body["detail"] == "No such item."


class TestProbes:
    async def test_healthz_answers_ok(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/healthz", headers={"Authorization": ""})

        assert response.status_code == 200
        assert response.json() == {"status": "ok", "service": SLUG}

    async def test_readyz_checks_the_database(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/readyz", headers={"Authorization": ""})

        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"status", "checks", "age_seconds"}
        assert (body["status"], body["checks"]) == ("ok", {"database": "ok"})

    async def test_readyz_checks_redis_when_configured(
        self, make_settings: MakeSettings, redis_url: str, redis_prefix: str
    ) -> None:
        app = service_app(make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix))
        async with running(app) as client:
            response = await client.get("/readyz")

        assert response.status_code == 200
        body = response.json()
        assert body["checks"] == {"database": "ok", "redis": "ok"}
        assert body["status"] == "ok"

    async def test_readyz_is_503_when_redis_is_unreachable(
        self, make_settings: MakeSettings
    ) -> None:
        settings = make_settings(
            redis_url="redis://127.0.0.1:1/0",
            redis_socket_timeout_seconds=0.5,
            redis_reconnect_backoff_seconds=0.2,
        )
        app = service_app(settings)
        async with running(app) as client:
            started = time.perf_counter()
            response = await client.get("/readyz")
            elapsed = time.perf_counter() - started

        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["redis"].startswith("error")
        assert elapsed < 3.0


class TestMetrics:
    async def test_requests_are_counted_by_route_template_and_status(
        self, settings: Settings
    ) -> None:
        app = service_app(settings)
        async with running(app) as client:
            client.headers.update(auth(await items_key(app.state.platform)))
            await client.get("/items/abc123")
            await client.get("/items/def456")
            await client.get("/items/missing")
            await client.get("/nowhere/at/all")
            text = scrape(app.state.platform)

        def requests(route: str, status: str) -> float:
            return metric_value(
                text, "xynergy_http_requests_total", service=SLUG, route=route, status=status
            )

        assert requests("/items/{item_id}", "200") == 2
        assert requests("/items/{item_id}", "404") == 1
        assert requests("<unmatched>", "404") == 1
        assert "abc123" not in text
        assert "/nowhere" not in text

    async def test_a_rate_limit_rejection_is_counted(self, make_settings: MakeSettings) -> None:
        limits = {**DEFAULT_RATE_LIMITS, "reads": "2/minute"}
        app = service_app(make_settings(rate_limits=limits))
        async with running(app) as client:
            client.headers.update(auth(await items_key(app.state.platform)))
            statuses = [(await client.get("/items/1")).status_code for _ in range(2)]
            limited = await client.get("/items/1")
            text = scrape(app.state.platform)

        assert statuses == [200, 200]
        assert_error(limited, 429, "rate_limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-limit"] == "2"
        assert (
            metric_value(
                text,
                "xynergy_rate_limit_rejections_total",
                service=SLUG,
                route_class="reads",
            )
            == 1
        )
        assert (
            metric_value(
                text,
                "xynergy_http_requests_total",
                service=SLUG,
                route="/items/{item_id}",
                status="429",
            )
            == 1
        )
