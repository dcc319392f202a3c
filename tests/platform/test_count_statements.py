"""Counts and stats are computed by the database, never by loading the rows.

For every endpoint that answers counts (ASO content count, intake stats, AI
usage, marketing performance), the statements run during one request are
captured from the platform's engine with the rows each one fetched. With many
rows stored, each statement reading a counted table must be an aggregate (a
COUNT or SUM, grouped or not) that fetches one row per group, and the request
as a whole must fetch a handful of rows, not one per stored record. Loading
every row and counting in Python, or paging through them, fails here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import auth, ensure_tenant, issue_key, running
from xynergy.ai_routing.usage.models import UsageEventRow
from xynergy.aso_engine.models import ContentPiece
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.marketing_engine.models import Campaign
from xynergy.platform.config import Settings
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.runtime import Platform
from xynergy.server import build_all_in_one

# Many more rows than any answer has groups: loading them would show.
ROWS = 400
# Every answer here has a few groups (statuses, kinds, days, models): a request
# that fetches more rows than this in total is reading records, not counting them.
MAX_ROWS_FETCHED = 60
SCOPES = ("content:read", "keywords:read", "intake:read", "ai:usage", "analytics:read")
CONTENT_STATUSES = ("draft", "published", "archived")
SUBMISSION_STATUSES = ("new", "accepted", "spam")
SOURCES = ("newsletter", "ads", None)
MODELS = ("alpha", "beta")
CAMPAIGN_STATUSES = ("draft", "active", "completed")
DAYS = 3
_AGGREGATE = re.compile(r"\b(count|sum)\s*\(", re.IGNORECASE)


@dataclass(frozen=True)
class Executed:
    statement: str
    rows: int

    @property
    def is_select(self) -> bool:
        return self.statement.lstrip().upper().startswith(("SELECT", "WITH"))

    def reads(self, table: str) -> bool:
        return re.search(rf"\b{table}\b", self.statement) is not None

    @property
    def is_aggregate(self) -> bool:
        return _AGGREGATE.search(self.statement) is not None


@contextmanager
def executed(engine: AsyncEngine) -> Iterator[list[Executed]]:
    """Every statement ``engine`` runs meanwhile, with the number of rows it fetched."""
    seen: list[Executed] = []

    def after(
        _conn: Any, cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        # Both async drivers' adapters (aiosqlite, asyncpg) buffer a result's rows
        # in the cursor as the statement runs; a SELECT without that buffer would
        # make the count below meaningless, so it fails the test instead.
        buffered = getattr(cursor, "_rows", None)
        rows = len(buffered) if buffered is not None else -1
        seen.append(Executed(statement, rows))

    event.listen(engine.sync_engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "after_cursor_execute", after)


def assert_counted_in_sql(seen: list[Executed], *tables: str) -> None:
    """Each table was counted by an aggregate; nothing read its rows or fetched many."""
    selects = [e for e in seen if e.is_select]
    assert all(e.rows >= 0 for e in selects), "rows fetched could not be observed"
    for table in tables:
        reading = [e for e in selects if e.reads(table)]
        assert reading, f"no statement read {table}: was the answer cached?"
        for statement in reading:
            assert statement.is_aggregate, f"{table} read without COUNT/SUM:\n{statement}"
    fetched = sum(e.rows for e in selects)
    assert fetched <= MAX_ROWS_FETCHED, [(e.rows, e.statement[:120]) for e in selects]


@dataclass
class Counted:
    client: httpx.AsyncClient
    platform: Platform
    tenant_id: str
    headers: dict[str, str]

    async def get(self, path: str, **params: Any) -> tuple[Any, list[Executed]]:
        with executed(self.platform.engine) as seen:
            response = await self.client.get(path, params=params, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json(), seen

    async def insert(self, model: Any, rows: list[dict[str, Any]]) -> None:
        async with unit_of_work(self.platform.sessionmaker) as session:
            await session.execute(insert(model), rows)


@pytest.fixture
async def counted(
    make_settings: Callable[..., Settings], database_url: str
) -> AsyncIterator[Counted]:
    root = build_all_in_one(make_settings(database_url=database_url))
    async with running(root) as client:
        platform = root.state.platform
        tenant_id, key = await issue_key(platform, tenant="acme", scopes=SCOPES)
        yield Counted(client, platform, tenant_id, auth(key.secret))


def now() -> datetime:
    return datetime.now(UTC)


def day(index: int) -> date:
    return now().date() - timedelta(days=index % DAYS)


async def add_content(api: Counted) -> None:
    moment = now()
    await api.insert(
        ContentPiece,
        [
            {
                "tenant_id": api.tenant_id,
                "title": f"Piece {i}",
                "body": "Body",
                "status": CONTENT_STATUSES[i % len(CONTENT_STATUSES)],
                "priority": "medium",
                "priority_rank": 1,
                "target_keywords": [],
                "author": "tests",
                "created_at": moment,
                "updated_at": moment,
            }
            for i in range(ROWS)
        ],
    )


async def add_campaigns(api: Counted) -> None:
    moment = now()
    await api.insert(
        Campaign,
        [
            {
                "tenant_id": api.tenant_id,
                "status": CAMPAIGN_STATUSES[i % len(CAMPAIGN_STATUSES)],
                "name": f"Campaign {i}",
                "business_type": "bakery",
                "industry": "food",
                "goals": ["awareness"],
                "channels": ["email"],
                "audience": "locals",
                "tone": "warm",
                "starts_on": moment.date(),
                "ends_on": moment.date() + timedelta(days=30),
                "budget": Decimal("100.00"),
                "request_hash": "0" * 64,
                "plan": {},
                "estimated_reach": 100,
                "created_at": moment,
                "updated_at": moment,
            }
            for i in range(ROWS)
        ],
    )


async def add_usage(api: Counted) -> None:
    await api.insert(
        UsageEventRow,
        [
            {
                "tenant_id": api.tenant_id,
                "key_id": None,
                "request_id": f"req-{i}",
                "task": "keywords",
                "model": MODELS[i % len(MODELS)],
                "provider": "offline",
                "input_tokens": 3,
                "output_tokens": 5,
                "cost_nanos": 7,
                "cache_hit": i % 4 == 0,
                "deduplicated": False,
                "latency_ms": 1,
                "status": "ok",
                "occurred_at": datetime.combine(day(i), now().timetz()),
                "day": day(i),
            }
            for i in range(ROWS)
        ],
    )


async def add_submissions(api: Counted) -> None:
    await ensure_tenant(api.platform, "acme")
    form = IntakeForm(
        tenant_id=api.tenant_id,
        public_id="frm_counted",
        kind="beta",
        name="beta form",
        allowed_origins=["https://www.acme.example"],
        webhook_url=None,
        active=True,
    )
    async with unit_of_work(api.platform.sessionmaker) as session:
        session.add(form)
    rows = []
    for i in range(ROWS):
        moment = datetime.combine(day(i), now().timetz())
        rows.append(
            {
                "tenant_id": api.tenant_id,
                "form_id": form.id,
                "kind": "beta",
                "status": SUBMISSION_STATUSES[i % len(SUBMISSION_STATUSES)],
                "email": f"person{i}@example.com",
                "name": "Ada",
                "company": None,
                "website": None,
                "subject": None,
                "body": "Hello",
                "source": SOURCES[i % len(SOURCES)],
                "utm": {},
                "spam_reasons": [],
                "content_hash": f"{i:064d}",
                "client_ip_hash": "0" * 64,
                "created_day": moment.date(),
                "created_at": moment,
                "updated_at": moment,
            }
        )
    await api.insert(Submission, rows)


class TestContentCount:
    async def test_counting_every_piece_is_one_count(self, counted: Counted) -> None:
        await add_content(counted)
        body, seen = await counted.get("/aso-engine/api/content/count")
        assert body == {"count": ROWS}
        assert_counted_in_sql(seen, "aso_content")

    async def test_counting_a_filtered_set_is_one_count(self, counted: Counted) -> None:
        await add_content(counted)
        body, seen = await counted.get("/aso-engine/api/content/count", status="draft")
        assert body == {"count": len(range(0, ROWS, len(CONTENT_STATUSES)))}
        assert_counted_in_sql(seen, "aso_content")


class TestIntakeStats:
    async def test_stats_are_grouped_counts(self, counted: Counted) -> None:
        await add_submissions(counted)
        since = (now().date() - timedelta(days=DAYS)).isoformat()
        body, seen = await counted.get("/intelligence-gateway/api/stats", since=since)
        assert body["total"] == ROWS
        assert sum(body["by_status"].values()) == ROWS
        assert len(body["by_day"]) == DAYS
        assert_counted_in_sql(seen, "intake_submissions")


class TestAiUsage:
    async def test_usage_is_grouped_sums(self, counted: Counted) -> None:
        await add_usage(counted)
        since = (now().date() - timedelta(days=DAYS)).isoformat()
        body, seen = await counted.get("/ai-routing-engine/api/usage", since=since)
        assert body["totals"]["requests"] == ROWS
        assert len(body["rows"]) == DAYS * len(MODELS)
        assert_counted_in_sql(seen, "ai_usage_events")


class TestMarketingPerformance:
    async def test_every_section_is_counted_in_sql(self, counted: Counted) -> None:
        await add_content(counted)
        await add_campaigns(counted)
        await add_usage(counted)
        body, seen = await counted.get("/marketing-engine/analytics/performance")
        assert body["partial"] is False, body["failures"]
        assert sum(body["campaigns"]["by_status"].values()) == ROWS
        assert sum(body["content"]["by_status"].values()) == ROWS
        assert body["ai"]["requests"] == ROWS
        assert_counted_in_sql(seen, "marketing_campaigns", "aso_content", "ai_usage_events")
