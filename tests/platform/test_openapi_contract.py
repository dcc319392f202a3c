"""The published contract tells the truth: every service's OpenAPI document declares
the errors its routes really answer, in the shape they really have, with how to
authenticate, the scopes and the rate class of each operation.

Structural tests walk every operation of every app ``xynergy.server`` builds; the
live tests provoke real errors and validate them against the declared schema.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jsonschema_rs
import pytest
from fastapi import Depends, FastAPI
from schemathesis.specs.openapi.definitions import OPENAPI_31
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.helpers import auth, issue_key, running
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.forms.schemas import ORIGIN_PATTERN
from xynergy.intelligence_gateway.forms.service import FormRules, normalise_origin
from xynergy.platform.app import create_service_app, walk_routes
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.config import DEFAULT_RATE_LIMITS, Settings
from xynergy.platform.error_shapes import PLATFORM_ERRORS, ErrorShape
from xynergy.platform.exceptions import Conflict, UpstreamTimeout, ValidationFailed
from xynergy.platform.idempotency import IdempotencyInProgress, IdempotencyResponseNotStored
from xynergy.platform.openapi_errors import RATE_LIMIT_HEADERS, error_causes
from xynergy.platform.openapi_links import add_resource_links
from xynergy.platform.routing import (
    ACTING_TENANT_HEADER,
    SecureRoute,
    acts_in_one_tenant,
    api_router,
    raises,
    shaped_errors,
)
from xynergy.platform.schema_bounds import apply_setting_bounds, setting_bounds
from xynergy.platform.web_sessions import SESSION_COOKIE
from xynergy.server import build_all_in_one, build_standalone

ERROR_STATUSES = re.compile(r"[45]\d\d")
# A key (either way of sending it) or a browser session: any one authenticates.
OPERATION_SECURITY = [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}, {"SessionCookie": []}]
FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
OPENAI_SHAPED_PREFIX = "/v1/"
IDEMPOTENCY_409 = {IdempotencyInProgress.code, IdempotencyResponseNotStored.code}
Writer = Annotated[AuthContext, Depends(require_scopes("content:write"))]


@dataclass(frozen=True)
class Operation:
    mount: str
    app: FastAPI
    route: SecureRoute
    method: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.mount}{self.route.path}"

    def error_responses(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """The error responses, less those the route declares as something else
        (``/readyz``'s 503 is its readiness report, not an error)."""
        causes = {str(cause.status) for cause in error_causes(self.route, self.spec, {})}
        for status, response in self.spec["responses"].items():
            own = int(status) in self.route.responses and status not in causes
            if ERROR_STATUSES.fullmatch(status) and not own:
                yield status, response


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    """Every service app, built as the server builds them (nothing started)."""
    data_dir = tmp_path_factory.mktemp("contract")
    return build_all_in_one(
        Settings(environment="test", data_dir=data_dir, gc_freeze_after_startup=False)
    )


def service_apps(root: Starlette) -> dict[str, FastAPI]:
    apps = {}
    for mount in root.routes:
        assert isinstance(mount, Mount)
        assert isinstance(mount.app, FastAPI)
        apps[mount.path] = mount.app
    return apps


def operations(root: Starlette) -> Iterator[Operation]:
    for mount, app in service_apps(root).items():
        paths = app.openapi()["paths"]
        for route in walk_routes(app.routes):
            if isinstance(route, SecureRoute) and route.include_in_schema:
                for method in route.methods or ():
                    spec = paths[route.path_format][method.lower()]
                    yield Operation(mount, app, route, method, spec)


def schema_refs(schema: dict[str, Any]) -> set[str]:
    """The components a response schema refers to at its top (directly or in allOf/anyOf)."""
    found = {schema["$ref"]} if "$ref" in schema else set()
    for key in ("allOf", "anyOf", "oneOf"):
        for part in schema.get(key, ()):
            found |= schema_refs(part)
    return found


def code_enum(schema: dict[str, Any]) -> list[str]:
    """The ``error`` codes a platform-shaped response schema narrows to."""
    if "properties" in schema:
        codes: list[str] = schema["properties"]["error"]["enum"]
        return codes
    for key in ("allOf", "anyOf"):
        for part in schema.get(key, ()):
            if "$ref" not in part or key == "anyOf":
                found = code_enum(part)
                if found:
                    return found
    return []


def declared_codes(response: dict[str, Any]) -> set[str]:
    return set(response["content"]["application/json"]["examples"])


def shape_ref(shape: ErrorShape) -> str:
    return f"#/components/schemas/{shape.name}"


# --- structure --------------------------------------------------------------------


def test_every_service_app_is_described(root: Starlette) -> None:
    mounts = set(service_apps(root))
    assert {"", "/aso-engine", "/ai-routing-engine"} <= mounts
    described = {op.mount for op in operations(root)}
    assert described == mounts


def test_no_operation_declares_fastapis_validation_error(root: Starlette) -> None:
    for mount, app in service_apps(root).items():
        document = app.openapi()
        text = json.dumps(document)
        for name in FASTAPI_VALIDATION:
            assert name not in document["components"]["schemas"], mount
            assert f"#/components/schemas/{name}" not in text, mount


def test_every_error_response_is_in_the_routes_shape(root: Starlette) -> None:
    for op in operations(root):
        schemas = op.app.openapi()["components"]["schemas"]
        shape = op.route.error_shape
        assert schemas[shape.name] == shape.schema, op.name
        errors = dict(op.error_responses())
        assert "422" in errors, f"{op.name}: hostile URL text answers 422"
        for status, response in errors.items():
            media = response["content"]["application/json"]
            assert shape_ref(shape) in schema_refs(media["schema"]), (op.name, status)
            assert media["examples"], (op.name, status)
            for code, example in media["examples"].items():
                rendered = shape.render(int(status), code, example["summary"], None)
                assert set(example["value"]) == set(json.loads(rendered)), (op.name, code)
            assert response["headers"]["X-Request-ID"]["required"] is True


def test_error_codes_are_declared_per_status(root: Starlette) -> None:
    for op in operations(root):
        if op.route.error_shape is not PLATFORM_ERRORS:
            continue
        for status, response in op.error_responses():
            schema = response["content"]["application/json"]["schema"]
            enum = code_enum(schema)
            assert set(enum) == declared_codes(response), (op.name, status)


def test_every_example_validates_against_its_schema(root: Starlette) -> None:
    for op in operations(root):
        components = op.app.openapi()["components"]
        for status, response in op.error_responses():
            media = response["content"]["application/json"]
            validator = jsonschema_rs.Draft202012Validator(
                {**media["schema"], "components": components}
            )
            for code, example in media["examples"].items():
                assert validator.is_valid(example["value"]), (op.name, status, code)


def test_non_public_operations_declare_authentication_errors(root: Starlette) -> None:
    for op in operations(root):
        if op.route.is_public:
            continue
        responses = op.spec["responses"]
        assert declared_codes(responses["401"]) == {"unauthorized"}, op.name
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        assert "forbidden" in declared_codes(responses["403"]), op.name
        assert "not_found" in declared_codes(responses["404"]), op.name
        limited = responses["429"]
        for header in RATE_LIMIT_HEADERS:
            assert limited["headers"][header]["required"] is True, (op.name, header)
        assert "database_busy" in declared_codes(responses["503"]), op.name
        if acts_in_one_tenant(op.route.required_scopes):
            assert "admin key did not name the tenant" in responses["400"]["description"]
        assert op.spec["security"] == OPERATION_SECURITY, op.name
        (tenant,) = [p for p in op.spec["parameters"] if p["name"] == ACTING_TENANT_HEADER]
        assert tenant["in"] == "header"
        assert tenant["required"] is False


def test_public_operations_need_no_key(root: Starlette) -> None:
    public = [op for op in operations(root) if op.route.is_public]
    assert public
    for op in public:
        assert op.spec["security"] == [], op.name
        # /session answers 401 itself: a refused key in its body, or no session
        # cookie (platform/web_sessions); no other public operation may.
        if op.route.path != "/session":
            assert "401" not in op.spec["responses"], op.name
        names = {p["name"] for p in op.spec.get("parameters", ())}
        assert ACTING_TENANT_HEADER not in names, op.name
        assert ("429" in op.spec["responses"]) == (op.route.rate_class is not None), op.name


def test_statuses_follow_the_route_properties(root: Starlette) -> None:
    for op in operations(root):
        responses = op.spec["responses"]
        has_body = "requestBody" in op.spec or op.route.body_field is not None
        assert ("413" in responses) == (has_body or op.route.accepts_uploads), op.name
        if op.route.body_field is not None and not op.route.accepts_uploads:
            assert "malformed_json" in declared_codes(responses["400"]), op.name
        if "{" in op.route.path:
            assert "not_found" in declared_codes(responses["404"]), op.name
        if op.route.rate_class is not None:
            assert "Retry-After" in responses["429"]["headers"], op.name
        for error in op.route.raises:
            assert error.code in declared_codes(responses[str(error.status_code)]), op.name


def test_domain_errors_come_from_the_raises_marker(root: Starlette) -> None:
    by_name = {op.name: op for op in operations(root)}
    approve = by_name["POST /marketing-engine/campaigns/{campaign_id}/approve"]
    # Beside the Idempotency-Key layer's own 409s (test_idempotency.py).
    assert declared_codes(approve.spec["responses"]["409"]) - IDEMPOTENCY_409 == {"conflict"}
    chat = by_name["POST /ai-routing-engine/v1/chat/completions"]
    assert "budget_exceeded" in declared_codes(chat.spec["responses"]["402"])
    assert "upstream_timeout" in declared_codes(chat.spec["responses"]["504"])
    content = by_name["GET /aso-engine/api/content"]
    assert "409" not in content.spec["responses"]


def test_scopes_and_rate_class_match_the_routes(root: Starlette) -> None:
    limits = DEFAULT_RATE_LIMITS
    for op in operations(root):
        spec, route = op.spec, op.route
        assert spec["x-xynergy-scopes"] == sorted(route.required_scopes), op.name
        description = spec["description"]
        for scope in route.required_scopes:
            assert f"`{scope}`" in description.rsplit("\n\n", 1)[-1], op.name
        if route.rate_class is None:
            assert "x-xynergy-rate-class" not in spec, op.name
            assert description.endswith("Not rate limited."), op.name
        else:
            extension = spec["x-xynergy-rate-class"]
            assert extension["name"] == route.rate_class, op.name
            assert extension["limit"] == limits[route.rate_class], op.name
            per = "client address" if route.is_public else "key"
            assert description.endswith(
                f"Rate class `{route.rate_class}` ({limits[route.rate_class]} per {per})."
            ), op.name


def test_security_schemes(root: Starlette) -> None:
    for app in service_apps(root).values():
        schemes = app.openapi()["components"]["securitySchemes"]
        assert schemes["ApiKeyBearer"] == {
            "type": "http",
            "scheme": "bearer",
            "description": schemes["ApiKeyBearer"]["description"],
        }
        assert schemes["ApiKeyHeader"]["type"] == "apiKey"
        assert schemes["ApiKeyHeader"]["in"] == "header"
        assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
        cookie = schemes["SessionCookie"]
        assert (cookie["type"], cookie["in"]) == ("apiKey", "cookie")
        assert cookie["name"] == SESSION_COOKIE
        assert "X-CSRF-Token" in cookie["description"]


async def test_the_documented_session_cookie_authenticates(
    make_settings: Callable[..., Settings],
) -> None:
    app = build_standalone(make_settings(), "aso-engine")
    async with running(app) as client:
        scheme = app.openapi()["components"]["securitySchemes"]["SessionCookie"]
        _, key = await issue_key(app.state.platform, scopes=("content:read",))
        signed_in = await client.post("/session", json={"api_key": key.secret})
        assert signed_in.status_code == 201, signed_in.text
        token = signed_in.cookies[scheme["name"]]
        client.cookies.clear()
        without = await client.get("/api/content")
        listed = await client.get("/api/content", headers={"Cookie": f"{scheme['name']}={token}"})
    assert without.status_code == 401
    assert listed.status_code == 200, listed.text


def test_documents_are_valid_openapi_3_1(root: Starlette) -> None:
    validator = jsonschema_rs.Draft202012Validator(OPENAPI_31)
    for mount, app in service_apps(root).items():
        document = app.openapi()
        assert document["openapi"].startswith("3.1"), mount
        errors = [error.message for error in validator.iter_errors(document)]
        assert errors == [], (mount, errors[:3])


def test_fastapi_still_caches_the_document(root: Starlette) -> None:
    app = service_apps(root)["/aso-engine"]
    assert app.openapi() is app.openapi()


def test_openai_routes_declare_their_own_shape(root: Starlette) -> None:
    shaped = [op for op in operations(root) if op.route.path.startswith(OPENAI_SHAPED_PREFIX)]
    assert shaped, "the AI gateway's /v1 routes"
    for op in shaped:
        assert op.route.error_shape is not PLATFORM_ERRORS, op.name
        for status, response in op.error_responses():
            refs = schema_refs(response["content"]["application/json"]["schema"])
            assert refs == {shape_ref(op.route.error_shape)}, (op.name, status)


def _nested_render(status: int, code: str, detail: str, request_id: str | None) -> bytes:
    return json.dumps({"fault": {"kind": code, "text": detail, "id": request_id}}).encode()


NESTED = ErrorShape(
    name="NestedFault",
    render=_nested_render,
    schema={"type": "object", "required": ["fault"], "properties": {"fault": {"type": "object"}}},
)


def test_a_routes_own_shape_and_markers_are_declared(
    make_settings: Callable[..., Settings],
) -> None:
    router = api_router()

    @router.post("/things/{thing_id}")
    @shaped_errors(NESTED)
    @raises(Conflict, UpstreamTimeout)
    async def change_thing(thing_id: str, _auth: Writer) -> dict[str, str]:
        """Change a thing."""
        return {"id": thing_id}

    app = create_service_app(slug="x", title="x", settings=make_settings(), routers=[router])
    document = app.openapi()
    operation = document["paths"]["/things/{thing_id}"]["post"]
    assert document["components"]["schemas"]["NestedFault"] == NESTED.schema
    for status in ("401", "403", "404", "409", "422", "429", "504"):
        schema = operation["responses"][status]["content"]["application/json"]["schema"]
        assert schema_refs(schema) == {"#/components/schemas/NestedFault"}, status
    conflict = operation["responses"]["409"]["content"]["application/json"]
    kinds = conflict["schema"]["allOf"][1]["properties"]["fault"]["properties"]["kind"]["enum"]
    assert set(kinds) == {"conflict", *IDEMPOTENCY_409}
    assert conflict["examples"]["conflict"]["value"]["fault"]["kind"] == "conflict"


# --- live: real errors validate against what is declared ----------------------------


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = document["paths"][path][method.lower()]
    return operation


def assert_conforms(
    document: dict[str, Any], method: str, path: str, response: httpx.Response
) -> None:
    """``response`` is declared for the operation: status, body schema, headers."""
    declared = _operation(document, method, path)["responses"]
    status = str(response.status_code)
    assert status in declared, f"{method} {path} answered undeclared {status}: {response.text}"
    media = declared[status]["content"]["application/json"]
    schema = {**media["schema"], "components": document["components"]}
    body = response.json()
    errors = [e.message for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(body)]
    assert errors == [], (status, body, errors)
    for name, header in declared[status]["headers"].items():
        value = response.headers.get(name)
        if header["required"]:
            assert value is not None, (status, name)
        if value is not None:
            assert jsonschema_rs.Draft202012Validator(header["schema"]).is_valid(value), name


async def _document(client: httpx.AsyncClient, mount: str) -> dict[str, Any]:
    response = await client.get(f"{mount}/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


class TestLiveErrorsMatchTheContract:
    async def test_authentication_scope_and_validation_errors(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        root = build_all_in_one(make_settings())
        async with running(root) as client:
            aso = await _document(client, "/aso-engine")
            _, reader = await issue_key(root.state.platform, scopes=["content:read"])
            headers = auth(reader.secret)
            cases = [
                ("GET", "/api/content", {}, None),  # 401
                ("POST", "/api/content", headers, {"title": "x"}),  # 403
                ("GET", "/api/content/{content_id}", headers, None),  # 404
                ("GET", "/api/content", headers, None),  # 422 (limit)
                ("GET", "/api/content", headers | {ACTING_TENANT_HEADER: "f" * 32}, None),
            ]
            expected = [401, 403, 404, 422, 403]
            for (method, path, sent, body), status in zip(cases, expected, strict=True):
                url = "/aso-engine" + path.replace("{content_id}", "a" * 32)
                params = {"limit": "-1"} if status == 422 else None
                response = await client.request(method, url, headers=sent, json=body, params=params)
                assert response.status_code == status, response.text
                assert_conforms(aso, method, path, response)

    async def test_malformed_json_and_conflict(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        root = build_all_in_one(make_settings())
        async with running(root) as client:
            admin_doc = await _document(client, "")
            _, admin = await issue_key(root.state.platform, tenant="platform", scopes=["admin"])
            headers = auth(admin.secret) | {"Content-Type": "application/json"}
            malformed = await client.post("/admin/tenants", headers=headers, content=b"{")
            assert malformed.status_code == 400
            assert_conforms(admin_doc, "POST", "/admin/tenants", malformed)
            for expected in (201, 409):
                created = await client.post("/admin/tenants", headers=headers, json={"name": "t"})
                assert created.status_code == expected, created.text
            assert_conforms(admin_doc, "POST", "/admin/tenants", created)

    async def test_rate_limited(self, make_settings: Callable[..., Settings]) -> None:
        limits = DEFAULT_RATE_LIMITS | {"reads": "2/hour"}
        root = build_all_in_one(make_settings(rate_limits=limits))
        async with running(root) as client:
            aso = await _document(client, "/aso-engine")
            _, reader = await issue_key(root.state.platform, scopes=["content:read"])
            statuses = []
            for _ in range(3):
                response = await client.get("/aso-engine/api/content", headers=auth(reader.secret))
                statuses.append(response.status_code)
            assert statuses == [200, 200, 429]
            assert_conforms(aso, "GET", "/api/content", response)
            assert "2/hour" in json.dumps(_operation(aso, "GET", "/api/content")["responses"])

    async def test_openai_shaped_errors(self, make_settings: Callable[..., Settings]) -> None:
        root = build_all_in_one(make_settings())
        async with running(root) as client:
            ai = await _document(client, "/ai-routing-engine")
            unauthenticated = await client.post("/ai-routing-engine/v1/chat/completions", json={})
            assert unauthenticated.status_code == 401
            assert_conforms(ai, "POST", "/v1/chat/completions", unauthenticated)
            _, caller = await issue_key(root.state.platform, scopes=["ai:generate"])
            invalid = await client.post(
                "/ai-routing-engine/v1/chat/completions", headers=auth(caller.secret), json={}
            )
            assert invalid.status_code == 422
            assert_conforms(ai, "POST", "/v1/chat/completions", invalid)
            assert invalid.json()["error"]["code"] == "validation_failed"


# --- schemas tell what the server accepts ------------------------------------------


def _documents(root: Starlette) -> dict[str, dict[str, Any]]:
    return {mount: app.openapi() for mount, app in service_apps(root).items()}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _at_pointer(document: dict[str, Any], schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    for part in pointer.strip("/").split("/"):
        schema = _resolve(document, schema)
        schema = schema["items"] if part.isdigit() else schema["properties"][part]
    return _resolve(document, schema)


def test_every_page_size_is_bounded_by_the_setting(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = Settings(
        environment="test",
        data_dir=tmp_path_factory.mktemp("bounds"),
        gc_freeze_after_startup=False,
        page_size_max=7,
    )
    limits = []
    for document in _documents(build_all_in_one(settings)).values():
        for item in document["paths"].values():
            for operation in item.values():
                for parameter in operation.get("parameters", ()):
                    if parameter.get("description") == "Page size.":
                        limits.append(parameter["schema"]["anyOf"][0])
    assert len(limits) >= 10
    assert all(limit == {"type": "integer", "minimum": 1, "maximum": 7} for limit in limits)
    assert "x-xynergy-setting-bounds" not in json.dumps(_documents(build_all_in_one(settings)))


def test_key_scopes_are_the_known_scopes(root: Starlette) -> None:
    document = service_apps(root)[""].openapi()
    scopes = _resolve(document, {"$ref": "#/components/schemas/ApiKeyCreate"})["properties"]
    assert scopes["scopes"]["items"]["enum"] == sorted(KNOWN_SCOPES)


def test_service_bounds_come_from_their_settings(root: Starlette) -> None:
    documents = _documents(root)
    gateway = documents["/intelligence-gateway"]["components"]["schemas"]
    intake = service_apps(root)["/intelligence-gateway"].state.intake
    origins = gateway["FormCreate"]["properties"]["allowed_origins"]
    assert origins["maxItems"] == intake.form_origins_max
    marketing = service_apps(root)["/marketing-engine"].state.marketing
    campaign = documents["/marketing-engine"]["components"]["schemas"]["CampaignGenerate"]
    channels = campaign["properties"]["channels"]
    assert channels["items"]["enum"] == sorted(marketing.channels)
    assert channels["maxItems"] == marketing.channels_max


def test_form_update_declares_what_its_validator_refuses(root: Starlette) -> None:
    schemas = _documents(root)["/intelligence-gateway"]["components"]["schemas"]
    update = schemas["FormUpdate"]
    assert update["minProperties"] == 1
    for name in ("name", "allowed_origins", "active"):
        assert "null" not in json.dumps(update["properties"][name]), name
    assert "null" in json.dumps(update["properties"]["webhook_url"])


@pytest.mark.parametrize(
    ("origin", "accepted"),
    [
        ("https://example.com", True),
        ("http://shop.example.co.uk:8080", True),
        ("HTTPS://Example.COM/", True),
        ("http://localhost:3000", True),
        ("http://192.168.0.1", True),
        ("https://a-b.c0", True),
        ("ftp://example.com", False),
        ("https://example.com/path", False),
        ("https://*.example.com", False),
        ("https://user@example.com", False),
        ("https://example.com:70000", False),
        ("http://1.2", False),
        ("https://example.com?x", False),
    ],
)
def test_origin_pattern_accepts_only_what_the_service_accepts(origin: str, accepted: bool) -> None:
    rules = FormRules(intake=IntakeSettings(), production=False)
    try:
        normalise_origin(origin, rules)
    except ValidationFailed:
        served = False
    else:
        served = True
    assert bool(re.fullmatch(ORIGIN_PATTERN, origin)) is accepted
    # Whatever the pattern accepts, the service accepts.
    assert served or not accepted


def test_links_name_real_operations_and_resolvable_ids(root: Starlette) -> None:
    total = 0
    for mount, document in _documents(root).items():
        by_id = {
            operation["operationId"]: (path, operation)
            for path, item in document["paths"].items()
            for operation in item.values()
        }
        for item in document["paths"].values():
            for operation in item.values():
                for status, response in operation["responses"].items():
                    schema = response.get("content", {}).get("application/json", {}).get("schema")
                    for link in response.get("links", {}).values():
                        total += 1
                        path, _target = by_id[link["operationId"]]
                        wanted = set(re.findall(r"\{([^}]+)\}", path))
                        assert set(link["parameters"]) == wanted, (mount, link)
                        for expression in link["parameters"].values():
                            if expression.startswith("$response.body#"):
                                field = _at_pointer(document, schema, expression.split("#", 1)[1])
                                assert field["type"] in ("string", "integer"), (mount, status)
    assert total >= 30


def test_a_created_key_links_to_its_own_operations(root: Starlette) -> None:
    document = service_apps(root)[""].openapi()
    links = _operation(document, "POST", "/admin/keys")["responses"]["201"]["links"]
    targets = {link["operationId"]: link["parameters"] for link in links.values()}
    paths = {
        path
        for path, item in document["paths"].items()
        for operation in item.values()
        if operation["operationId"] in targets
    }
    assert paths == {
        "/admin/keys/{key_id}",
        "/admin/keys/{key_id}/rotate",
        "/admin/keys/{key_id}/revoke",
    }
    assert set(map(json.dumps, targets.values())) == {'{"key_id": "$response.body#/key/id"}'}


async def test_readyz_503_is_declared_as_its_report(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        redis_url="redis://127.0.0.1:1/0",
        redis_socket_timeout_seconds=0.5,
        redis_reconnect_backoff_seconds=0.2,
    )
    root = build_all_in_one(settings)
    async with running(root) as client:
        document = await _document(client, "")
        response = await client.get("/readyz")
    assert response.status_code == 503, response.text
    assert _operation(document, "GET", "/readyz")["responses"]["503"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/ReadinessBody"}
    assert_conforms(document, "GET", "/readyz", response)


def _ok(schema: dict[str, Any], status: str = "200") -> dict[str, Any]:
    return {status: {"content": {"application/json": {"schema": schema}}}}


def test_links_pass_the_collections_own_path_parameters_on() -> None:
    step = {"type": "object", "properties": {"id": {"type": "string"}}}
    document: dict[str, Any] = {
        "paths": {
            "/campaigns/{campaign_id}/steps": {
                "post": {"operationId": "add_step", "responses": _ok(step, "201")}
            },
            "/campaigns/{campaign_id}/steps/{step_id}": {
                "get": {"operationId": "get_step", "responses": _ok(step)},
                "delete": {"operationId": "delete_step", "responses": {"204": {}}},
            },
            "/campaigns/{campaign_id}/steps/{step_id}/notes/{note_id}": {
                "get": {"operationId": "get_note", "responses": _ok(step)}
            },
        }
    }

    add_resource_links(document)

    links = document["paths"]["/campaigns/{campaign_id}/steps"]["post"]["responses"]["201"]
    parameters = {
        "campaign_id": "$request.path.campaign_id",
        "step_id": "$response.body#/id",
    }
    # get_note needs a note id nobody answered: no link rather than a guessed id.
    assert links["links"] == {
        "get_step": {"operationId": "get_step", "parameters": parameters},
        "delete_step": {"operationId": "delete_step", "parameters": parameters},
    }
    deleted = document["paths"]["/campaigns/{campaign_id}/steps/{step_id}"]["delete"]
    assert "links" not in deleted["responses"]["204"]


def test_setting_bounds_land_on_the_branch_of_their_type() -> None:
    schema = {
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}],
        **setting_bounds(maximum="page_size_max"),
    }
    apply_setting_bounds({"schema": schema}, {"page_size_max": 9}.__getitem__)
    assert schema == {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 9}, {"type": "null"}]}
    with pytest.raises(ValueError, match="not a bound keyword"):
        setting_bounds(pattern="page_size_max")
