"""Shared by the admin-side tests (forms, submissions, export, stats); holds no tests.

A running Intelligence Gateway with ``intake:read`` + ``intake:admin`` keys for two
tenants. Submissions are written straight through the ORM: the admin side must
not depend on the public intake to have rows to read.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.aso_engine.api import TwoTenantApi, start_two_tenants
from tests.helpers import auth, issue_key, running
from xynergy.intelligence_gateway.app import create_intelligence_gateway_app
from xynergy.intelligence_gateway.config import IntakeSettings
from xynergy.intelligence_gateway.models import IntakeForm, Submission
from xynergy.platform.config import Settings
from xynergy.platform.db.base import Base, utcnow
from xynergy.platform.db.session import unit_of_work

FORMS = "/api/forms"
SUBMISSIONS = "/api/submissions"
BETA_APPLICATIONS = "/api/beta-applications"
EXPORT = "/api/submissions/export.csv"
STATS = "/api/stats"
READ_ADMIN = ("intake:read", "intake:admin")
MISSING_ID = "0" * 32
ERROR_FIELDS = {"error", "detail", "request_id"}
_MAX_PAGES = 500


@dataclass
class AdminApi(TwoTenantApi):
    """``headers`` act for tenant acme, ``other`` for tenant globex (both read + admin)."""

    collection: ClassVar[str] = FORMS
    defaults: ClassVar[dict[str, Any]] = {
        "kind": "beta",
        "name": "Beta sign-up",
        "allowed_origins": ["https://www.acme.example"],
    }

    async def key(self, *scopes: str) -> dict[str, str]:
        """Headers of another acme key holding only ``scopes``."""
        _, issued = await issue_key(self.platform, tenant="acme", scopes=scopes)
        return auth(issued.secret)

    async def add_form(self, *, kind: str = "beta", tenant_id: str | None = None) -> str:
        """A form written straight to the database; its id."""
        form = IntakeForm(
            tenant_id=tenant_id or self.tenant_id,
            public_id="frm_" + secrets.token_urlsafe(15),
            kind=kind,
            name=f"{kind} form",
            allowed_origins=["https://www.acme.example"],
            webhook_url=None,
            webhook_secret="whsec_test",
            active=True,
        )
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(form)
        return form.id

    async def add_submission(
        self,
        form_id: str,
        *,
        tenant_id: str | None = None,
        kind: str = "beta",
        created_at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """A submission written straight to the database; its id."""
        moment = created_at or utcnow()
        values: dict[str, Any] = {
            "status": "new",
            "email": "ada@example.com",
            "name": "Ada",
            "company": None,
            "website": None,
            "subject": None,
            "body": "Hello",
            "source": None,
            "utm": {},
            "spam_reasons": [],
            "content_hash": "0" * 64,
            "client_ip_hash": "0" * 64,
            **fields,
        }
        row = Submission(
            tenant_id=tenant_id or self.tenant_id,
            form_id=form_id,
            kind=kind,
            created_day=moment.date(),
            created_at=moment,
            updated_at=moment,
            **values,
        )
        async with unit_of_work(self.platform.sessionmaker) as session:
            session.add(row)
        return row.id

    async def count(self, model: type[Base], **where: Any) -> int:
        """Rows of ``model`` matching ``where`` (all tenants)."""
        query = select(func.count()).select_from(model).filter_by(**where)
        async with self.platform.sessionmaker() as session:
            return int(await session.scalar(query) or 0)

    async def stored(self, model: type[Base], row_id: str) -> Any:
        async with self.platform.sessionmaker() as session:
            return await session.get(model, row_id)

    async def walk(
        self, path: str, headers: dict[str, str] | None = None, **params: Any
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paginated list, two at a time."""
        items: list[dict[str, Any]] = []
        query: dict[str, Any] = {"limit": 2, **params}
        for _ in range(_MAX_PAGES):
            response = await self.client.get(path, params=query, headers=headers or self.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            assert set(page) == {"items", "next_cursor"}
            assert len(page["items"]) <= 2
            items.extend(page["items"])
            if page["next_cursor"] is None:
                return items
            query["cursor"] = page["next_cursor"]
        pytest.fail("pagination did not terminate")

    async def ids(self, path: str, **params: Any) -> list[str]:
        return [item["id"] for item in await self.walk(path, **params)]


@asynccontextmanager
async def admin_api(
    settings: Settings, intake: IntakeSettings | None = None
) -> AsyncIterator[AdminApi]:
    """Start the gateway and yield its admin API with keys for two tenants."""
    app = create_intelligence_gateway_app(settings, intake=intake or IntakeSettings())
    async with running(app) as client:
        yield await start_two_tenants(AdminApi, app, client, READ_ADMIN)


@contextmanager
def statements(engine: AsyncEngine, containing: str = "") -> Iterator[list[str]]:
    """Yields the list of SQL statements ``engine`` runs (those containing ``containing``)."""
    seen: list[str] = []

    def on_execute(
        _conn: Any, _cursor: Any, statement: str, _params: Any, _ctx: Any, _many: bool
    ) -> None:
        if containing in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", on_execute)


def assert_error(response: Any, status: int, code: str, *mentions: str) -> None:
    """``response`` is the platform's error body with ``status``/``code``."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["error"] == code
    for text in mentions:
        assert text in body["detail"], body["detail"]


def created(items: Sequence[dict[str, Any]]) -> list[datetime]:
    return [datetime.fromisoformat(item["created_at"]) for item in items]
