"""Idempotency-Key on authenticated writes (platform/idempotency.py), on SQLite and
PostgreSQL.

Real writes are counted in SQL (ASO content pieces and keyword imports); the
behaviours a real endpoint cannot be made to show on demand (a run held open, a
5xx, a large answer) use a probe service built with the same platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount

from tests.helpers import auth, issue_key, running
from tests.platform.db.lock_holder import write_lock_held
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.models import ContentPiece, Keyword
from xynergy.platform.admin_app import create_admin_app
from xynergy.platform.app import create_service_app, walk_routes
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.db.base import utcnow
from xynergy.platform.db.session import SessionDep, unit_of_work
from xynergy.platform.exceptions import UpstreamUnavailable
from xynergy.platform.idempotency import IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER
from xynergy.platform.idempotency_models import IdempotencyRecord
from xynergy.platform.idempotency_purge import TASK_NAME, IdempotencyPurger
from xynergy.platform.routing import ACTING_TENANT_HEADER, SecureRoute, api_router
from xynergy.platform.runtime import Platform
from xynergy.platform.tenancy.models import Tenant
from xynergy.server import build_all_in_one

MakeSettings = Callable[..., Settings]
Writer = Annotated[AuthContext, Depends(require_scopes("content:write"))]

CONTENT = "/api/content"
IMPORT = "/api/keywords/bulk-import"
ASO_SCOPES = ("content:read", "content:write", "keywords:read", "keywords:write")
PIECE = {"title": "A title", "author": "ann"}
CSV = "phrase,locale,tags,target_url,intent\nrunning shoes,en-US,,,\ntrail shoes,en-US,,,\n"
CONCURRENT_DUPLICATES = 8
SMALL_RESPONSE_LIMIT = 1024
BIG_PADDING = 4 * SMALL_RESPONSE_LIMIT
# A request that should answer at once; past this it is waiting on the held run.
ANSWER_BOUND_SECONDS = 10.0
PROBE_TENANT = "acme"
# Every write route that ignores Idempotency-Key, and why: a new one is a decision.
EXPECTED_EXEMPT = {
    ("POST", "/admin/keys"): "secret",
    ("POST", "/admin/keys/{key_id}/rotate"): "secret",
    ("POST", "/intelligence-gateway/api/forms"): "secret",
    ("PATCH", "/intelligence-gateway/api/forms/{form_id}"): "secret",
    ("POST", "/platform-dashboard/api/alerts"): "secret",
    ("PATCH", "/platform-dashboard/api/alerts/{rule_id}"): "secret",
    ("POST", "/ai-routing-engine/v1/chat/completions"): "OpenAI",
    ("POST", "/system-runtime/api/ws-tickets"): "secret",
    ("POST", "/ai-assistant/api/conversation/message"): "turn",
    ("POST", "/ai-assistant/api/conversations/{conversation_id}/messages"): "turn",
}


def key(value: str) -> dict[str, str]:
    return {IDEMPOTENCY_KEY_HEADER: value}


async def count(platform: Platform, model: Any, tenant_id: str | None = None) -> int:
    query = select(func.count()).select_from(model)
    if tenant_id is not None:
        query = query.where(model.tenant_id == tenant_id)
    async with platform.sessionmaker() as session:
        return int(await session.scalar(query) or 0)


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"}
    assert body["error"] == code


@pytest.fixture
def settings(make_settings: MakeSettings, database_url: str) -> Settings:
    return make_settings(database_url=database_url)


# --- the ASO Engine: real writes -------------------------------------------------


@dataclass
class Aso:
    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]
    other_tenant_id: str
    other: dict[str, str]
    key_id: str

    async def create(self, idempotency_key: str | None, **extra: str) -> httpx.Response:
        headers = {**self.headers, **(key(idempotency_key) if idempotency_key else {})}
        return await self.client.post(CONTENT, json=PIECE, headers={**headers, **extra})

    async def pieces(self, tenant_id: str | None = None) -> int:
        return await count(self.platform, ContentPiece, tenant_id or self.tenant_id)


@pytest.fixture
async def aso(settings: Settings) -> AsyncIterator[Aso]:
    app = create_aso_engine_app(settings, aso=AsoSettings())
    async with running(app) as client:
        platform: Platform = app.state.platform
        tenant_id, issued = await issue_key(platform, tenant="acme", scopes=ASO_SCOPES)
        other_id, other = await issue_key(platform, tenant="globex", scopes=ASO_SCOPES)
        yield Aso(
            client,
            platform,
            tenant_id,
            auth(issued.secret),
            other_id,
            auth(other.secret),
            issued.key.id,
        )


class TestReplay:
    async def test_a_repeat_replays_the_answer_and_writes_once(self, aso: Aso) -> None:
        first = await aso.create("create-piece-1")
        again = await aso.create("create-piece-1")
        assert first.status_code == again.status_code == 201
        assert again.content == first.content
        assert again.headers[REPLAYED_HEADER] == "true"
        assert REPLAYED_HEADER not in first.headers
        assert again.headers["content-type"] == first.headers["content-type"]
        assert await aso.pieces() == 1

    async def test_a_replayed_import_is_not_imported_again(self, aso: Aso) -> None:
        headers = {**aso.headers, "Content-Type": "text/csv", **key("import-1")}
        first = await aso.client.post(IMPORT, content=CSV.encode(), headers=headers)
        again = await aso.client.post(IMPORT, content=CSV.encode(), headers=headers)
        assert first.status_code == again.status_code == 200, first.text
        # Run again, the report would say "0 inserted, 2 already tracked".
        assert again.json() == first.json()
        assert first.json()["inserted"] == 2
        assert again.headers[REPLAYED_HEADER] == "true"
        assert await count(aso.platform, Keyword, aso.tenant_id) == 2

    async def test_another_file_under_the_same_key_is_refused(self, aso: Aso) -> None:
        headers = {**aso.headers, "Content-Type": "text/csv", **key("import-2")}
        first = await aso.client.post(IMPORT, content=CSV.encode(), headers=headers)
        assert first.status_code == 200, first.text
        other = CSV.replace("trail shoes", "road shoes").encode()
        refused = await aso.client.post(IMPORT, content=other, headers=headers)
        assert_error(refused, 422, "idempotency_key_reused")
        assert await count(aso.platform, Keyword, aso.tenant_id) == 2

    async def test_concurrent_duplicates_write_once(self, aso: Aso) -> None:
        answers = await asyncio.gather(
            *(aso.create("create-piece-race") for _ in range(CONCURRENT_DUPLICATES))
        )
        statuses = [answer.status_code for answer in answers]
        assert set(statuses) <= {201, 409}, statuses
        created = [answer for answer in answers if answer.status_code == 201]
        assert created
        assert len({answer.content for answer in created}) == 1
        for answer in answers:
            if answer.status_code == 409:
                assert_error(answer, 409, "idempotency_in_progress")
                assert answer.headers["Retry-After"].isdigit()
        assert await aso.pieces() == 1

    async def test_the_same_key_with_another_body_is_refused(self, aso: Aso) -> None:
        assert (await aso.create("create-piece-2")).status_code == 201
        refused = await aso.client.post(
            CONTENT,
            json={**PIECE, "title": "Another"},
            headers={**aso.headers, **key("create-piece-2")},
        )
        assert_error(refused, 422, "idempotency_key_reused")
        assert await aso.pieces() == 1

    async def test_the_same_key_in_two_tenants_is_two_writes(self, aso: Aso) -> None:
        mine = await aso.create("shared-key")
        theirs = await aso.client.post(
            CONTENT, json=PIECE, headers={**aso.other, **key("shared-key")}
        )
        assert mine.status_code == theirs.status_code == 201
        assert REPLAYED_HEADER not in theirs.headers
        assert theirs.json()["id"] != mine.json()["id"]
        again = await aso.create("shared-key")
        assert again.content == mine.content
        assert again.headers[REPLAYED_HEADER] == "true"
        assert await aso.pieces() == 1
        assert await aso.pieces(aso.other_tenant_id) == 1


class TestServiceClient:
    async def test_an_internal_call_with_a_key_is_deduplicated(self, aso: Aso) -> None:
        caller = AuthContext(
            tenant_id=aso.tenant_id,
            key_id=aso.key_id,
            key_tenant_id=aso.tenant_id,
            scopes=frozenset(ASO_SCOPES),
        )

        async def call() -> Any:
            return await aso.platform.services.request(
                "aso-engine",
                "POST",
                CONTENT,
                caller=caller,
                scopes=("content:write",),
                json=PIECE,
                idempotency_key="run-0001:step-create-piece",
            )

        first, again = await call(), await call()
        assert first.status == again.status == 201
        assert again.content == first.content
        assert again.headers[REPLAYED_HEADER.lower()] == "true"
        assert await aso.pieces() == 1


class TestKeySyntax:
    @pytest.mark.parametrize(
        "value",
        [b"", b"has space", b"x" * 256, b"caf\xe9", b"tab\there"],
        ids=["empty", "space", "too-long", "not-ascii", "control"],
    )
    async def test_a_malformed_key_is_400_and_nothing_is_written(
        self, aso: Aso, value: bytes
    ) -> None:
        headers = [*_raw(aso.headers), (IDEMPOTENCY_KEY_HEADER.encode(), value)]
        response = await aso.client.post(CONTENT, json=PIECE, headers=headers)
        assert_error(response, 400, "idempotency_key_invalid")
        assert await aso.pieces() == 0

    async def test_two_keys_on_one_request_are_400(self, aso: Aso) -> None:
        name = IDEMPOTENCY_KEY_HEADER.encode()
        headers = [*_raw(aso.headers), (name, b"a"), (name, b"b")]
        response = await aso.client.post(CONTENT, json=PIECE, headers=headers)
        assert_error(response, 400, "idempotency_key_invalid")
        assert await aso.pieces() == 0

    async def test_the_longest_key_is_accepted(self, aso: Aso) -> None:
        assert (await aso.create("k" * 255)).status_code == 201
        assert (await aso.create("k" * 255)).headers[REPLAYED_HEADER] == "true"
        assert await aso.pieces() == 1


class TestExpiry:
    async def test_an_expired_record_lets_the_key_write_again(self, aso: Aso) -> None:
        assert (await aso.create("expiring")).status_code == 201
        assert (await aso.create("expiring")).headers[REPLAYED_HEADER] == "true"
        async with unit_of_work(aso.platform.sessionmaker) as session:
            await session.execute(
                update(IdempotencyRecord).values(expires_at=utcnow() - timedelta(seconds=1))
            )
        again = await aso.create("expiring")
        assert again.status_code == 201
        assert REPLAYED_HEADER not in again.headers
        assert await aso.pieces() == 2

    async def test_the_purge_deletes_expired_records_in_batches(
        self, aso: Aso, make_settings: MakeSettings, database_url: str
    ) -> None:
        for index in range(5):
            assert (await aso.create(f"purge-{index}")).status_code == 201
        async with unit_of_work(aso.platform.sessionmaker) as session:
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.idempotency_key != "purge-4")
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        settings = make_settings(database_url=database_url, idempotency_purge_batch_size=2)
        purged = await IdempotencyPurger(aso.platform.sessionmaker, settings).purge_once()
        assert purged == 4
        assert await count(aso.platform, IdempotencyRecord) == 1

    async def test_the_purge_task_runs_with_the_platform_and_stops_with_it(
        self, settings: Settings
    ) -> None:
        app = create_aso_engine_app(settings, aso=AsoSettings())
        async with running(app):
            tasks = [task for task in asyncio.all_tasks() if task.get_name() == TASK_NAME]
            assert len(tasks) == 1
            assert not tasks[0].done()
        assert tasks[0].done()


# --- a probe service: held runs, failures, large answers, opt-outs -----------------


class ThingCreate(BaseModel):
    name: str = Field(max_length=100)
    padding: int = Field(default=0, ge=0, le=BIG_PADDING)


@dataclass
class Probe:
    """What the probe endpoint does on its next runs, and how often it ran."""

    runs: int = 0
    raise_next: int = 0
    answer_500_next: int = 0
    # Leave a write behind that fails when the request's unit of work commits.
    fail_commit_next: int = 0
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)


def probe_router(probe: Probe) -> APIRouter:
    router = api_router()

    @router.post("/things", status_code=201, response_model=None)
    async def create_thing(
        body: ThingCreate, session: SessionDep, _caller: Writer
    ) -> dict[str, Any] | Response:
        """Count a run; wait, fail or pad as told."""
        probe.runs += 1
        probe.entered.set()
        if probe.gate is not None:
            await probe.gate.wait()
        if probe.raise_next:
            probe.raise_next -= 1
            raise UpstreamUnavailable()
        if probe.answer_500_next:
            probe.answer_500_next -= 1
            return JSONResponse({"error": "internal_error"}, status_code=500)
        if probe.fail_commit_next:
            probe.fail_commit_next -= 1
            session.add(Tenant(name=PROBE_TENANT))  # taken: the commit fails
        return {"run": probe.runs, "name": body.name, "padding": "x" * body.padding}

    return router


@dataclass
class ProbeApi:
    client: httpx.AsyncClient
    platform: Platform
    probe: Probe
    headers: dict[str, str]

    async def create(self, idempotency_key: str, **body: Any) -> httpx.Response:
        return await self.client.post(
            "/things",
            json={"name": "thing", **body},
            headers={**self.headers, **key(idempotency_key)},
        )

    async def records(self) -> int:
        return await count(self.platform, IdempotencyRecord)


@pytest.fixture
async def probe_api(make_settings: MakeSettings, database_url: str) -> AsyncIterator[ProbeApi]:
    settings = make_settings(
        database_url=database_url, idempotency_max_response_bytes=SMALL_RESPONSE_LIMIT
    )
    probe = Probe()
    app = create_service_app(
        slug="probe", title="Probe", settings=settings, routers=[probe_router(probe)]
    )
    async with running(app) as client:
        platform: Platform = app.state.platform
        _, issued = await issue_key(platform, tenant=PROBE_TENANT, scopes=["content:write"])
        yield ProbeApi(client, platform, probe, auth(issued.secret))


class TestInFlight:
    async def test_a_repeat_while_the_first_runs_is_409_then_replays(
        self, probe_api: ProbeApi
    ) -> None:
        probe_api.probe.gate = asyncio.Event()
        first = asyncio.create_task(probe_api.create("held"))
        await asyncio.wait_for(probe_api.probe.entered.wait(), ANSWER_BOUND_SECONDS)
        try:
            during = await asyncio.wait_for(probe_api.create("held"), ANSWER_BOUND_SECONDS)
        finally:
            probe_api.probe.gate.set()
        assert_error(during, 409, "idempotency_in_progress")
        assert during.headers["Retry-After"] == "1"
        assert (await first).status_code == 201
        after = await probe_api.create("held")
        assert after.headers[REPLAYED_HEADER] == "true"
        assert probe_api.probe.runs == 1

    async def test_a_crashed_first_run_is_taken_over_after_the_timeout(
        self, probe_api: ProbeApi
    ) -> None:
        probe_api.probe.gate = asyncio.Event()
        first = asyncio.create_task(probe_api.create("crashed"))
        await asyncio.wait_for(probe_api.probe.entered.wait(), ANSWER_BOUND_SECONDS)
        # As if its process had died long ago: the claim is past its deadline.
        async with unit_of_work(probe_api.platform.sessionmaker) as session:
            await session.execute(
                update(IdempotencyRecord).values(locked_until=utcnow() - timedelta(seconds=1))
            )
        probe_api.probe.gate = None
        retried = await asyncio.wait_for(probe_api.create("crashed"), ANSWER_BOUND_SECONDS)
        assert retried.status_code == 201
        assert REPLAYED_HEADER not in retried.headers
        assert probe_api.probe.runs == 2
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        replay = await probe_api.create("crashed")
        assert replay.json() == retried.json()
        assert replay.headers[REPLAYED_HEADER] == "true"


class TestFailuresAreNotStored:
    async def test_a_raised_error_releases_the_key_and_the_retry_runs(
        self, probe_api: ProbeApi
    ) -> None:
        probe_api.probe.raise_next = 1
        failed = await probe_api.create("flaky")
        assert_error(failed, 503, "upstream_unavailable")
        assert await probe_api.records() == 0
        retried = await probe_api.create("flaky")
        assert retried.status_code == 201
        assert REPLAYED_HEADER not in retried.headers
        assert (await probe_api.create("flaky")).headers[REPLAYED_HEADER] == "true"
        assert probe_api.probe.runs == 2

    async def test_an_answered_500_releases_the_key_and_the_retry_runs(
        self, probe_api: ProbeApi
    ) -> None:
        probe_api.probe.answer_500_next = 1
        assert (await probe_api.create("flaky-500")).status_code == 500
        retried = await probe_api.create("flaky-500")
        assert retried.status_code == 201
        assert REPLAYED_HEADER not in retried.headers
        assert (await probe_api.create("flaky-500")).headers[REPLAYED_HEADER] == "true"
        assert probe_api.probe.runs == 2


class TestCommitOrder:
    async def test_a_write_whose_commit_fails_is_not_stored_as_done(
        self, probe_api: ProbeApi
    ) -> None:
        probe_api.probe.fail_commit_next = 1
        failed = await probe_api.create("commit-fails")
        assert failed.status_code == 500  # the platform's last resort
        assert await probe_api.records() == 0
        retried = await probe_api.create("commit-fails")
        assert retried.status_code == 201
        assert REPLAYED_HEADER not in retried.headers
        assert (await probe_api.create("commit-fails")).headers[REPLAYED_HEADER] == "true"
        assert probe_api.probe.runs == 2


class TestLargeAnswers:
    async def test_a_repeat_of_a_write_too_large_to_keep_is_refused_not_run(
        self, probe_api: ProbeApi
    ) -> None:
        first = await probe_api.create("big", padding=BIG_PADDING)
        assert first.status_code == 201
        again = await probe_api.create("big", padding=BIG_PADDING)
        assert_error(again, 409, "idempotency_response_not_stored")
        assert probe_api.probe.runs == 1


class TestDatabaseErrors:
    @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
    async def test_a_busy_database_is_503_and_nothing_runs(
        self, make_settings: MakeSettings, database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url, sqlite_busy_timeout_ms=50)
        probe = Probe()
        app = create_service_app(
            slug="probe", title="Probe", settings=settings, routers=[probe_router(probe)]
        )
        async with running(app) as client:
            _, issued = await issue_key(app.state.platform, scopes=["content:write"])
            headers = {**auth(issued.secret), **key("locked")}
            async with write_lock_held(database_url, "tenants"):
                response = await client.post("/things", json={"name": "x"}, headers=headers)
            assert_error(response, 503, "database_busy")
            assert response.headers["Retry-After"].isdigit()
            assert probe.runs == 0
            assert (
                await client.post("/things", json={"name": "x"}, headers=headers)
            ).status_code == 201


# --- opt-outs and the contract ----------------------------------------------------


@pytest.fixture(scope="module")
def all_in_one() -> Starlette:
    return build_all_in_one(Settings(environment="test", internal_token_secret="s" * 40))


def _mounted_routes(root: Starlette) -> list[tuple[str, SecureRoute]]:
    return [
        (mount, route)
        for mount, app in _apps(root).items()
        for route in walk_routes(app.routes)
        if isinstance(route, SecureRoute)
    ]


def _apps(root: Starlette) -> dict[str, FastAPI]:
    return {
        mount.path: mount.app
        for mount in root.routes
        if isinstance(mount, Mount) and isinstance(mount.app, FastAPI)
    }


def test_the_exempt_write_routes_are_exactly_the_declared_ones(all_in_one: Starlette) -> None:
    exempt = {
        (method, mount + route.path): route.idempotency_exempt
        for mount, route in _mounted_routes(all_in_one)
        for method in route.methods or ()
        if route.idempotency_exempt is not None
    }
    assert set(exempt) == set(EXPECTED_EXEMPT)
    for operation, reason in exempt.items():
        assert reason is not None
        assert EXPECTED_EXEMPT[operation] in reason, operation


def test_every_other_authenticated_write_route_honours_the_key(all_in_one: Starlette) -> None:
    for mount, route in _mounted_routes(all_in_one):
        writes = bool((route.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"})
        expected = writes and not route.is_public and route.idempotency_exempt is None
        assert route.honours_idempotency == expected, mount + route.path


def test_the_contract_declares_the_header_and_its_errors(all_in_one: Starlette) -> None:
    declaring = set()
    for mount, route in _mounted_routes(all_in_one):
        if not route.include_in_schema or route.is_public:
            continue  # the public intake declares its own Idempotency-Key
        operations = _apps(all_in_one)[mount].openapi()["paths"][route.path_format]
        for method in route.methods or ():
            operation = operations[method.lower()]
            names = {parameter["name"] for parameter in operation.get("parameters", ())}
            responses = operation["responses"]
            declared = route.honours_idempotency
            assert (IDEMPOTENCY_KEY_HEADER in names) == declared, mount + route.path
            if declared:
                declaring.add((method, mount + route.path))
                assert "idempotency_key_reused" in str(responses["422"]), route.path
                assert "idempotency_in_progress" in str(responses["409"]), route.path
                assert responses["409"]["headers"]["Retry-After"]
                assert "idempotency_key_invalid" in str(responses["400"]), route.path
    assert {("POST", "/aso-engine/api/content"), ("POST", "/admin/tenants")} <= declaring


class TestOptedOut:
    async def test_a_created_keys_secret_is_never_stored(self, settings: Settings) -> None:
        app = create_admin_app(settings)
        async with running(app) as client:
            platform: Platform = app.state.platform
            _, issued = await issue_key(platform, tenant=OPERATOR_TENANT_NAME, scopes=["admin"])
            acme, _ = await issue_key(platform, tenant="acme")
            headers = {
                **auth(issued.secret),
                ACTING_TENANT_HEADER: acme,
                **key("create-key-1"),
            }
            body = {"name": "ci", "scopes": ["content:read"]}
            first = await client.post("/admin/keys", json=body, headers=headers)
            again = await client.post("/admin/keys", json=body, headers=headers)
            assert first.status_code == again.status_code == 201, first.text
            assert REPLAYED_HEADER not in again.headers
            assert first.json()["secret"] != again.json()["secret"]
            # The same admin key's other writes are stored as usual.
            tenant = await client.post(
                "/admin/tenants",
                json={"name": "initech"},
                headers={**auth(issued.secret), **key("create-tenant-1")},
            )
            assert tenant.status_code == 201, tenant.text
            async with platform.sessionmaker() as session:
                stored = (await session.scalars(select(IdempotencyRecord).limit(10))).all()
            assert [record.idempotency_key for record in stored] == ["create-tenant-1"]
            for secret in (first.json()["secret"], again.json()["secret"]):
                assert secret.encode() not in (stored[0].response_body or b"")
