"""Migration 0016: the intake's outbox rows move to ``platform_outbox`` and back.

Plain (sync) tests, as Alembic's env.py runs its own event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from tests.platform.db.test_migrations import (  # noqa: F401 - fixtures used by name
    empty_database_url,
    empty_postgres_url,
    sqlite_url,
)
from xynergy.platform.db.migrate import alembic_config

NOW = dt.datetime(2026, 12, 1, 6, 0, tzinfo=dt.UTC)
TENANTS = sa.table("tenants", *(sa.column(c) for c in ("id", "name", "created_at")))
FORMS = sa.table(
    "intake_forms",
    *(
        sa.column(c)
        for c in (
            "id",
            "tenant_id",
            "public_id",
            "kind",
            "name",
            "allowed_origins",
            "active",
            "created_at",
            "updated_at",
        )
    ),
)
OUTBOX_COLUMNS = ("id", "tenant_id", "event", "payload", "attempts", "next_attempt_at")
OLD = sa.table(
    "intake_outbox",
    *(sa.column(c) for c in (*OUTBOX_COLUMNS, "form_id", "submission_id", "delivered_at")),
    sa.column("created_at"),
)
NEW = sa.table(
    "platform_outbox",
    *(sa.column(c) for c in (*OUTBOX_COLUMNS, "source_kind", "source_id", "delivered_at")),
)


def _run(url: str, statements: Any) -> Any:
    async def run() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                return await statements(connection)
        finally:
            await engine.dispose()

    return asyncio.run(run())


async def _seed(connection: Any) -> None:
    await connection.execute(sa.insert(TENANTS).values(id="t1", name="acme", created_at=NOW))
    await connection.execute(
        sa.insert(FORMS).values(
            id="f1",
            tenant_id="t1",
            public_id="pub_f1",
            kind="contact",
            name="Contact",
            allowed_origins=sa.literal(["https://acme.example"], sa.JSON()),
            active=True,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    for message_id, delivered in (("pending", None), ("done", NOW)):
        await connection.execute(
            sa.insert(OLD).values(
                id=message_id,
                tenant_id="t1",
                form_id="f1",
                submission_id="s-" + message_id,
                event="submission.created",
                payload='{"id":"' + message_id + '"}',
                attempts=3,
                next_attempt_at=NOW,
                delivered_at=delivered,
                created_at=NOW,
            )
        )


async def _moved(connection: Any) -> list[tuple[Any, ...]]:
    rows = await connection.execute(
        sa.select(
            NEW.c.id, NEW.c.source_kind, NEW.c.source_id, NEW.c.attempts, NEW.c.payload
        ).order_by(NEW.c.id)
    )
    return [tuple(row) for row in rows]


async def _back(connection: Any) -> list[tuple[Any, ...]]:
    rows = await connection.execute(
        sa.select(OLD.c.id, OLD.c.form_id, OLD.c.attempts).order_by(OLD.c.id)
    )
    return [tuple(row) for row in rows]


class TestMigration0016:
    def test_every_intake_row_moves_then_comes_back_on_downgrade(
        self,
        empty_database_url: str,  # noqa: F811 - the fixture imported above
    ) -> None:
        config = alembic_config(empty_database_url)
        command.upgrade(config, "0015")
        _run(empty_database_url, _seed)

        command.upgrade(config, "0016")
        assert _run(empty_database_url, _moved) == [
            ("done", "intake-form", "f1", 3, '{"id":"done"}'),
            ("pending", "intake-form", "f1", 3, '{"id":"pending"}'),
        ]

        command.downgrade(config, "0015")
        assert _run(empty_database_url, _back) == [("done", "f1", 3), ("pending", "f1", 3)]
