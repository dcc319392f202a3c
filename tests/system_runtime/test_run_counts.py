"""GET /api/workflow-counts: exact run counts per status, counted by the database, for
the caller's tenant (an operator may name another); on SQLite and PostgreSQL.

Most runs here are stored straight into ``runtime_runs`` (hundreds, over the runs
list's page cap, with chosen statuses and ages); the last test counts real runs
waiting at an approval step, then approved and rejected through the signal API.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import auth, error_code
from tests.system_runtime.support import Harness, harness, op
from xynergy.platform.auth.scopes import OPERATOR_TENANT_NAME
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.routing import ACTING_TENANT_HEADER
from xynergy.system_runtime.models import RunRecord

pytestmark = pytest.mark.asyncio

COUNTS = "/system-runtime/api/workflow-counts"
STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled")
# Past the runs list's largest page (100): a count from one page would be short.
RECENT = {"succeeded": 61, "failed": 37, "waiting": 9, "running": 4, "queued": 3, "cancelled": 2}
OLD = {"succeeded": 20, "failed": 5}  # created two days ago
OTHER_DEFINITION = {"succeeded": 7, "waiting": 2}  # recent, another definition
MAX_ROWS_FETCHED = len(STATUSES)
_GROUPED_COUNT = re.compile(r"count\s*\(.*group by", re.IGNORECASE | re.DOTALL)


@pytest.fixture
async def h(make_settings: Callable[..., Settings], database_url: str) -> AsyncIterator[Harness]:
    async with harness(make_settings(database_url=database_url)) as running:
        yield running


async def store_runs(
    h: Harness, tenant_id: str, by_status: dict[str, int], *, definition: str, age: timedelta
) -> None:
    created = datetime.now(UTC) - age
    rows = [
        {
            "id": (run_id := new_id()),
            "tenant_id": tenant_id,
            "definition_name": definition,
            "definition_version": 1,
            "built_in": False,
            "spec": {"name": definition, "steps": []},
            "input": {},
            "status": status,
            "workflow_id": run_id,
            "resumes": 0,
            "key_id": h.key_id,
            "key_tenant_id": tenant_id,
            "scopes": ["workflows:read"],
            "created_at": created,
        }
        for status, number in by_status.items()
        for _ in range(number)
    ]
    async with unit_of_work(h.platform.sessionmaker) as session:
        await session.execute(insert(RunRecord), rows)


async def store_every_kind(h: Harness, tenant_id: str) -> None:
    await store_runs(h, tenant_id, RECENT, definition="nightly", age=timedelta(minutes=5))
    await store_runs(h, tenant_id, OLD, definition="nightly", age=timedelta(days=2))
    await store_runs(h, tenant_id, OTHER_DEFINITION, definition="weekly", age=timedelta(minutes=5))


def expected(*parts: dict[str, int]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for part in parts:
        total.update(part)
    return {status: total[status] for status in STATUSES} | {"total": sum(total.values())}


def figures(body: dict[str, Any]) -> dict[str, int]:
    return {name: body[name] for name in (*STATUSES, "total")}


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[tuple[str, int]]]:
    """Each statement ``engine`` runs meanwhile, with the number of rows it fetched."""
    seen: list[tuple[str, int]] = []

    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # Both async drivers' adapters buffer a result's rows in the cursor.
        buffered = getattr(cursor, "_rows", None)
        seen.append((statement, len(buffered) if buffered is not None else -1))

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


async def counts(h: Harness, headers: dict[str, str], **params: Any) -> Any:
    response = await h.client.get(COUNTS, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


class TestCountRuns:
    async def test_counts_are_exact_past_a_page_in_one_grouped_count(self, h: Harness) -> None:
        await store_every_kind(h, h.tenant_id)
        with statements(h.platform.engine) as seen:
            everything = await counts(h, h.headers)
        assert figures(everything) == expected(RECENT, OLD, OTHER_DEFINITION)
        assert everything["total"] > 100
        assert everything["tenant_id"] == h.tenant_id
        reads = [(sql, rows) for sql, rows in seen if "runtime_runs" in sql]
        assert len(reads) == 1, reads
        sql, rows = reads[0]
        assert _GROUPED_COUNT.search(sql), sql
        assert 0 <= rows <= MAX_ROWS_FETCHED, (rows, sql)

    async def test_since_and_definition_narrow_the_counts(self, h: Harness) -> None:
        await store_every_kind(h, h.tenant_id)
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        recent = await counts(h, h.headers, since=since)
        nightly = await counts(h, h.headers, definition="nightly")
        both = await counts(h, h.headers, definition="weekly", since=since)
        none = await counts(h, h.headers, definition="never-run")
        assert figures(recent) == expected(RECENT, OTHER_DEFINITION)
        assert datetime.fromisoformat(recent["since"]) == datetime.fromisoformat(since)
        assert figures(nightly) == expected(RECENT, OLD)
        assert nightly["definition"] == "nightly"
        assert figures(both) == expected(OTHER_DEFINITION)
        assert figures(none) == expected()

    async def test_bad_parameters_are_refused(self, h: Harness) -> None:
        for params in (
            {"since": "2026-12-01T10:00:00"},  # no time zone
            {"since": "yesterday"},
            {"definition": "Not A Name"},
            {"tenant": "acme"},
        ):
            response = await h.client.get(COUNTS, params=params, headers=h.headers)
            assert response.status_code == 422, (params, response.text)
            assert error_code(response.json()) == "validation_failed"


class TestTenants:
    async def test_a_tenant_counts_only_its_own_runs(self, h: Harness) -> None:
        other_id, _, other_secret = await h.key("globex", scopes=("workflows:read",))
        await store_every_kind(h, h.tenant_id)
        await store_runs(h, other_id, {"failed": 3}, definition="nightly", age=timedelta(0))
        mine = await counts(h, h.headers)
        theirs = await counts(h, auth(other_secret))
        named_self = await counts(h, h.headers, tenant=h.tenant_id)
        peek = await h.client.get(COUNTS, params={"tenant": other_id}, headers=h.headers)
        missing = await h.client.get(COUNTS, params={"tenant": new_id()}, headers=h.headers)
        assert figures(mine) == expected(RECENT, OLD, OTHER_DEFINITION)
        assert figures(theirs) == expected({"failed": 3})
        assert figures(named_self) == figures(mine)
        assert peek.status_code == 404, peek.text
        assert error_code(peek.json()) == "not_found"
        assert missing.status_code == 404, missing.text

    async def test_an_operator_may_name_a_tenant(self, h: Harness) -> None:
        _, _, operator = await h.key(OPERATOR_TENANT_NAME, scopes=("workflows:read",))
        _, _, admin = await h.key(OPERATOR_TENANT_NAME, scopes=("admin",))
        await store_every_kind(h, h.tenant_id)
        named = await counts(h, auth(operator), tenant=h.tenant_id)
        # An admin key names the tenant it acts for in the header, as everywhere.
        acting = auth(admin) | {ACTING_TENANT_HEADER: h.tenant_id}
        by_admin = await counts(h, acting, definition="weekly")
        own = await counts(h, auth(operator))
        unknown = await h.client.get(COUNTS, params={"tenant": new_id()}, headers=auth(operator))
        assert figures(named) == expected(RECENT, OLD, OTHER_DEFINITION)
        assert named["tenant_id"] == h.tenant_id
        assert figures(by_admin) == expected(OTHER_DEFINITION)
        # Unnamed, an operator's own tenant: the runs API never mixes tenants.
        assert figures(own) == expected()
        assert unknown.status_code == 404, unknown.text


class TestApprovals:
    async def test_waiting_runs_are_counted_and_a_rejection_ends_its_run(self, h: Harness) -> None:
        await h.define(
            "gated",
            [
                op("first", "test.sleep"),
                {"id": "gate", "kind": "approval", "depends_on": ["first"]},
                op("last", "test.sleep", depends_on=["gate"]),
            ],
        )
        approved_id = await h.started("gated")
        rejected_id = await h.started("gated")
        await h.wait_for(approved_id, ("waiting",))
        await h.wait_for(rejected_id, ("waiting",))
        waiting = await counts(h, h.headers, definition="gated")
        approve = await h.post(approved_id, "signal", {"step_id": "gate", "decision": "approve"})
        reject = await h.post(
            rejected_id, "signal", {"step_id": "gate", "decision": "reject", "reason": "No."}
        )
        approved = await h.wait_for(approved_id)
        rejected = await h.wait_for(rejected_id)
        ended = await counts(h, h.headers, definition="gated")
        assert figures(waiting) == expected({"waiting": 2})
        assert (approve.status_code, reject.status_code) == (200, 200), (approve.text, reject.text)
        assert approved["status"] == "succeeded", approved
        assert (rejected["status"], rejected["error_code"]) == ("failed", "approval_rejected")
        steps = {step["id"]: step["status"] for step in rejected["steps"]}
        assert steps == {"first": "succeeded", "gate": "failed", "last": "pending"}
        assert figures(ended) == expected({"succeeded": 1, "failed": 1})
        assert h.probe.calls["last"] == 1, "only the approved run went on"
