"""The definitions API: validation, versions, bounds, built-ins, tenants and scopes,
and runs of a tenant's chosen version; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import copy
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import INTERNAL_SECRET, _empty_tables
from tests.helpers import auth, error_code, issue_key, running
from xynergy.platform.config import Settings
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASE = "/system-runtime/api"
DEFINITIONS = f"{BASE}/workflow-definitions"
WRITER = ("workflows:read", "workflows:write", "keywords:read")
# Lowered so the bounds are cheap to reach.
BOUNDS = {
    "STEPS_MAX": "5",
    "DEFINITION_MAX_BYTES": "2048",
    "DEFINITIONS_MAX_PER_TENANT": "3",
    "VERSIONS_MAX_PER_DEFINITION": "3",
    "APPROVAL_TIMEOUT_SECONDS_MAX": "3600",
}


def definition(name: str = "weekly-keywords", **changes: Any) -> dict[str, Any]:
    """A valid definition of two steps (the second maps from the first), changed."""
    body: dict[str, Any] = {
        "name": name,
        "description": "List keywords, then the next page.",
        "inputs": {"locale": {"type": "string"}},
        "steps": [
            {"id": "first", "operation": "aso.list_keywords", "input": {"limit": 1}},
            {
                "id": "second",
                "operation": "aso.list_keywords",
                "depends_on": ["first"],
                "input": {"locale": {"$ref": "/input/locale"}, "limit": 2},
            },
        ],
    }
    body.update(changes)
    return body


def with_step(index: int, **changes: Any) -> dict[str, Any]:
    body = definition()
    body["steps"] = copy.deepcopy(body["steps"])
    body["steps"][index].update(changes)
    return body


REFUSALS: dict[str, tuple[dict[str, Any], str]] = {
    "cycle": (with_step(0, depends_on=["second"]), "dependency cycle"),
    "unknown operation": (with_step(0, operation="aso.delete_everything"), "not in the catalogue"),
    "unknown dependency": (with_step(1, depends_on=["zeroth"]), "unknown steps ['zeroth']"),
    "self dependency": (with_step(1, depends_on=["first", "second"]), "cannot depend on itself"),
    "non-ancestor mapping": (
        with_step(0, input={"q": {"$ref": "/steps/second/output/items"}}),
        "not one it depends on",
    ),
    "undeclared input": (
        with_step(1, input={"q": {"$ref": "/input/phrase"}}),
        "an input the definition does not declare",
    ),
    "too many steps": (
        definition(steps=[{"id": f"s{i}", "kind": "wait", "wait_seconds": 1} for i in range(6)]),
        "6 steps, at most 5",
    ),
    "too large": (definition(description="x" * 2000), "bytes, at most 2048"),
    "wait without seconds": (
        definition(steps=[{"id": "pause", "kind": "wait"}]),
        "steps.pause.wait_seconds: required",
    ),
    "approval timeout above max": (
        definition(steps=[{"id": "ok", "kind": "approval", "approval_timeout_seconds": 3601}]),
        "approval_timeout_seconds: at most 3600",
    ),
    "required query input left out": (
        definition(steps=[{"id": "moved", "operation": "aso.trending"}]),
        "missing ['window']",
    ),
}


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str]
    make_headers: Callable[..., Any]

    async def create(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(DEFINITIONS, json=body, headers=self.headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, params=params, headers=self.headers)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def module_database(
    request: pytest.FixtureRequest,
    sqlite_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Path]]:
    """One database per backend for the whole module (each test uses its own tenants):
    launching DBOS on a fresh PostgreSQL schema per test would cost seconds each."""
    data_dir = tmp_path_factory.mktemp("definitions") / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        target = data_dir / "xynergy.db"
        shutil.copy(sqlite_template, target)
        shutil.copy(sqlite_template.with_suffix(".dbos.sqlite"), target.with_suffix(".dbos.sqlite"))
        yield f"sqlite+aiosqlite:///{target}", data_dir
        return
    url = request.getfixturevalue("postgres_url")
    yield url, data_dir
    asyncio.run(_empty_tables(url))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def platform(
    module_database: tuple[str, Path],
) -> AsyncIterator[tuple[httpx.AsyncClient, Platform]]:
    url, data_dir = module_database
    settings = Settings(
        environment="test",
        data_dir=data_dir,
        database_url=url,
        internal_token_secret=INTERNAL_SECRET,
        access_log=False,
        gc_freeze_after_startup=False,
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in BOUNDS.items():
            patch.setenv(f"XYNERGY_RUNTIME_{name}", value)
        app = build_all_in_one(settings)
    async with running(app) as client:
        yield client, app.state.platform


@pytest_asyncio.fixture(loop_scope="module")
async def api(platform: tuple[httpx.AsyncClient, Platform]) -> Api:
    """The shared app, as a fresh tenant of this test (and others on demand)."""
    client, shared = platform
    prefix = uuid.uuid4().hex[:8]

    async def headers(tenant: str = "acme", scopes: tuple[str, ...] = WRITER) -> Any:
        _, key = await issue_key(shared, tenant=f"{prefix}-{tenant}", scopes=scopes)
        return auth(key.secret)

    return Api(client, await headers(), headers)


async def test_a_definition_that_could_not_run_is_refused_with_every_problem(api: Api) -> None:
    for case, (body, expected) in REFUSALS.items():
        answer = await api.create(body)
        assert answer.status_code == 422, (case, answer.text)
        assert error_code(answer.json()) == "validation_failed"
        assert expected in answer.json()["detail"], (case, answer.json()["detail"])
    both = with_step(0, operation="nope.nothing", input={"q": {"$ref": "/input/nothing"}})
    detail = (await api.create(both)).json()["detail"]
    assert "2 problems" in detail
    assert "'nope.nothing'" in detail
    assert "/input/nothing" in detail
    listed = (await api.get(DEFINITIONS)).json()
    assert listed["items"] == [], "nothing refused was stored"


async def test_a_name_gets_versions_and_each_stays_readable(api: Api) -> None:
    first = await api.create(definition())
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["built_in"]) == (1, False)
    assert first.json()["required_scopes"] == ["keywords:read"]
    second = await api.create(definition(description="Version two."))
    assert second.json()["version"] == 2
    assert second.headers["location"].endswith("/weekly-keywords?version=2")

    latest = (await api.get(f"{DEFINITIONS}/weekly-keywords")).json()
    assert (latest["version"], latest["spec"]["description"]) == (2, "Version two.")
    old = (await api.get(f"{DEFINITIONS}/weekly-keywords", version=1)).json()
    assert old["spec"]["description"] == "List keywords, then the next page."
    missing = await api.get(f"{DEFINITIONS}/weekly-keywords", version=3)
    assert missing.status_code == 404
    assert error_code(missing.json()) == "not_found"

    await api.create(definition("other"))
    page = (await api.get(DEFINITIONS, limit=1)).json()
    assert [(i["name"], i["version"]) for i in page["items"]] == [("other", 1)]
    rest = (await api.get(DEFINITIONS, limit=1, cursor=page["next_cursor"])).json()
    assert [(i["name"], i["version"]) for i in rest["items"]] == [("weekly-keywords", 2)]
    assert rest["next_cursor"] is None
    versions = (await api.get(f"{DEFINITIONS}/weekly-keywords/versions")).json()
    assert [item["version"] for item in versions["items"]] == [2, 1]


async def test_bounds_on_definitions_and_versions(api: Api) -> None:
    for _ in range(3):
        assert (await api.create(definition())).status_code == 201
    too_many_versions = await api.create(definition())
    assert too_many_versions.status_code == 409
    assert "versions_max_per_definition" in too_many_versions.json()["detail"]
    for name in ("two", "three"):
        assert (await api.create(definition(name))).status_code == 201
    too_many = await api.create(definition("four"))
    assert too_many.status_code == 409
    assert "definitions_max_per_tenant" in too_many.json()["detail"]


async def test_built_ins_are_listed_readable_and_their_names_reserved(api: Api) -> None:
    taken = await api.create(definition("campaign-from-research"))
    assert taken.status_code == 409
    assert "built-in" in taken.json()["detail"]
    built_in = (await api.get(DEFINITIONS, source="built_in")).json()
    names = {item["name"] for item in built_in["items"]}
    assert {"campaign-from-research", "keyword-rankings-report"} <= names
    assert all(item["built_in"] and item["version"] == 1 for item in built_in["items"])
    one = (await api.get(f"{DEFINITIONS}/keyword-rankings-report")).json()
    assert one["built_in"]
    assert "keywords:write" in one["required_scopes"]
    assert (await api.get(DEFINITIONS)).json()["items"] == [], "own ones only by default"


async def test_the_catalogue_is_listed_with_scopes(api: Api) -> None:
    listed = (await api.get(f"{BASE}/workflow-operations")).json()["items"]
    by_name = {item["name"]: item for item in listed}
    assert by_name["aso.trending"]["required_inputs"] == ["window"]
    assert by_name["aso.import_keywords"]["body"] == "ndjson"
    assert set(by_name["marketing.research"]["scopes"]) >= {"keywords:read", "ai:generate"}


async def test_another_tenants_definition_is_not_found(api: Api) -> None:
    assert (await api.create(definition())).status_code == 201
    other = await api.make_headers(tenant="globex")
    for path in (f"{DEFINITIONS}/weekly-keywords", f"{DEFINITIONS}/weekly-keywords?version=1"):
        answer = await api.client.get(path, headers=other)
        assert answer.status_code == 404, answer.text
    assert (await api.client.get(DEFINITIONS, headers=other)).json()["items"] == []
    versions = await api.client.get(f"{DEFINITIONS}/weekly-keywords/versions", headers=other)
    assert versions.json()["items"] == []
    start = await api.client.post(
        f"{BASE}/workflows/start",
        json={"definition": "weekly-keywords", "input": {"locale": "en-US"}},
        headers=other,
    )
    assert start.status_code == 404


async def test_scopes_are_required(api: Api) -> None:
    reader = await api.make_headers(scopes=("workflows:read",))
    refused = await api.client.post(DEFINITIONS, json=definition(), headers=reader)
    assert refused.status_code == 403
    assert error_code(refused.json()) == "forbidden"
    writer_only = await api.make_headers(scopes=("workflows:write",))
    for path in (DEFINITIONS, f"{BASE}/workflow-operations", f"{DEFINITIONS}/trending-report"):
        assert (await api.client.get(path, headers=writer_only)).status_code == 403


async def test_a_run_uses_the_version_it_names(api: Api) -> None:
    await api.create(definition())
    await api.create(
        definition(inputs={}, steps=[{"id": "only", "operation": "aso.list_keywords"}])
    )

    async def run(**start: Any) -> dict[str, Any]:
        body = {"definition": "weekly-keywords", **start}
        answer = await api.client.post(f"{BASE}/workflows/start", json=body, headers=api.headers)
        assert answer.status_code == 202, answer.text
        for _ in range(200):
            detail: dict[str, Any] = (
                await api.get(f"{BASE}/workflows/{answer.json()['id']}")
            ).json()
            if detail["status"] in ("succeeded", "failed"):
                return detail
            await asyncio.sleep(0.05)
        raise AssertionError(detail)

    first = await run(version=1, input={"locale": "en-US"})
    assert (first["status"], first["definition_version"]) == ("succeeded", 1), first
    assert [step["id"] for step in first["steps"]] == ["first", "second"]
    latest = await run()
    assert (latest["status"], latest["definition_version"]) == ("succeeded", 2), latest
    assert [step["id"] for step in latest["steps"]] == ["only"]


async def test_concurrent_creates_of_one_name_draw_distinct_versions(api: Api) -> None:
    # Each round of the retry stores at least one: three creates at once all succeed.
    answers = await asyncio.gather(*(api.create(definition("raced")) for _ in range(3)))
    assert [answer.status_code for answer in answers] == [201] * 3, [a.text for a in answers]
    assert sorted(answer.json()["version"] for answer in answers) == [1, 2, 3]
