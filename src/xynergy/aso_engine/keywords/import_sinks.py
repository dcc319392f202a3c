"""Where an import's clean rows are written, by mode and database.

A long import must not hold the database's write lock for its whole duration:
on SQLite there is one writer at a time, and every other tenant's write would
wait (then get 503) until the file has arrived.

* Best effort: every batch is its own short transaction, so other writers take
  the lock between batches. Rows become visible batch by batch; a failure
  before the end (a bound exceeded, a lost client, a database busy beyond its
  wait) deletes what this import wrote, found by the random id prefix its rows
  share, so a refused file still leaves nothing behind (a crash of the process
  mid-import can: that is the price of not holding the lock).
* All or nothing on SQLite: rows wait in a TEMP table of the connection, which
  takes no lock on the database, and move in one INSERT ... SELECT at the end.
  The write lock is held for that insert only (bounded by the row limit), not
  while the file arrives; other writers wait up to the busy timeout and may get
  503 while it runs (measured in bench/sqlite_contention.py), and the insert
  itself waits longer (``import_final_insert_wait_seconds``) for its turn behind
  another import's. Many tenants importing at once is what PostgreSQL is for.
* All or nothing on PostgreSQL: batches go into the caller's transaction; row
  locks hold back only writers of the same tenant's same keywords.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords.repository import KeywordImportStage, KeywordRepository
from xynergy.aso_engine.keywords.schemas import ImportMode, ImportRejection, ImportReport
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.logging import get_logger

__all__ = ["ImportSink", "ImportTally", "open_sink"]

log = get_logger(__name__)

# Half of an id is the import's prefix, half is random per row: 64 random bits
# each, so ids stay unguessable and the import's rows are one key range.
_ID_PREFIX_BYTES = 8
_ID_ROW_BYTES = 8


@dataclass
class ImportTally:
    """The counts of one import, as the report shows them."""

    bounds: AsoSettings
    received: int = 0
    inserted: int = 0
    duplicates_in_file: int = 0
    duplicates_existing: int = 0
    rejected: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)

    def reject(self, line: int, reason: str) -> None:
        self.rejected += 1
        if len(self.rejections) < self.bounds.import_max_reported_rejections:
            self.rejections.append(ImportRejection(line=line, reason=reason))

    def count_inserted(
        self, rows: Sequence[dict[str, Any]], seen: Sequence[bool], inserted: set[str]
    ) -> None:
        """Classify a written batch: inserted, repeated in the file, or already stored."""
        for row, was_seen in zip(rows, seen, strict=True):
            if row["id"] in inserted:
                self.inserted += 1
            elif was_seen:
                self.duplicates_in_file += 1
            else:
                self.duplicates_existing += 1

    def report(self, mode: ImportMode) -> ImportReport:
        return ImportReport(
            mode=mode,
            received=self.received,
            inserted=self.inserted,
            duplicates_in_file=self.duplicates_in_file,
            duplicates_existing=self.duplicates_existing,
            rejected=self.rejected,
            rejections=self.rejections,
            rejections_truncated=self.rejected > len(self.rejections),
        )


class ImportSink(Protocol):
    """Writes batches of clean rows and counts them into the tally."""

    atomic: bool

    def new_id(self) -> str: ...

    async def start(self) -> None: ...

    async def write(self, rows: Sequence[dict[str, Any]], seen: Sequence[bool]) -> None: ...

    async def finish(self) -> None: ...

    async def undo(self) -> None: ...

    async def close(self) -> None: ...


class _InTransaction:
    """Batches inserted in the caller's transaction (all or nothing on PostgreSQL)."""

    atomic = True

    def __init__(self, session: AsyncSession, tenant_id: str, tally: ImportTally) -> None:
        self.repository = KeywordRepository(session)
        self.tenant_id = tenant_id
        self.tally = tally

    def new_id(self) -> str:
        return new_id()

    async def start(self) -> None:
        return None

    async def write(self, rows: Sequence[dict[str, Any]], seen: Sequence[bool]) -> None:
        inserted = await self.repository.insert_ignoring_existing(
            rows, tenant_id=self.tenant_id, created_at=utcnow()
        )
        self.tally.count_inserted(rows, seen, inserted)

    async def finish(self) -> None:
        return None

    async def undo(self) -> None:
        return None  # the caller's transaction rolls back

    async def close(self) -> None:
        return None


class _Staged:
    """SQLite, all or nothing: staged in a TEMP table, moved in one statement."""

    atomic = True

    def __init__(self, session: AsyncSession, tenant_id: str, tally: ImportTally) -> None:
        self.stage = KeywordImportStage(session)
        self.tenant_id = tenant_id
        self.tally = tally
        self.staged = 0

    def new_id(self) -> str:
        return new_id()

    async def start(self) -> None:
        await self.stage.create()

    async def write(self, rows: Sequence[dict[str, Any]], seen: Sequence[bool]) -> None:
        # The stage's own unique key finds repeats within the file exactly.
        added = await self.stage.add(rows)
        self.staged += added
        self.tally.duplicates_in_file += len(rows) - added

    async def finish(self) -> None:
        wait_ms = round(self.tally.bounds.import_final_insert_wait_seconds * 1000)
        inserted = await self.stage.move(
            tenant_id=self.tenant_id, created_at=utcnow(), wait_ms=wait_ms
        )
        self.tally.inserted += inserted
        self.tally.duplicates_existing += self.staged - inserted

    async def undo(self) -> None:
        return None  # the caller's transaction rolls back

    async def close(self) -> None:
        try:
            await self.stage.drop()
        except Exception as exc:
            # The next import on this connection drops it first.
            log.warning("keywords.import_stage_not_dropped", error=repr(exc))


class _BatchCommits:
    """Best effort: each batch its own unit of work; undone by id prefix on failure."""

    atomic = False

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        tenant_id: str,
        tally: ImportTally,
    ) -> None:
        self.sessions = sessions
        self.tenant_id = tenant_id
        self.tally = tally
        self.id_prefix = secrets.token_hex(_ID_PREFIX_BYTES)
        self.wrote = False

    def new_id(self) -> str:
        return self.id_prefix + secrets.token_hex(_ID_ROW_BYTES)

    async def start(self) -> None:
        return None

    async def write(self, rows: Sequence[dict[str, Any]], seen: Sequence[bool]) -> None:
        self.wrote = True
        async with unit_of_work(self.sessions) as session:
            inserted = await KeywordRepository(session).insert_ignoring_existing(
                rows, tenant_id=self.tenant_id, created_at=utcnow()
            )
        self.tally.count_inserted(rows, seen, inserted)

    async def finish(self) -> None:
        return None

    async def undo(self) -> None:
        if not self.wrote:
            return
        bounds = self.tally.bounds
        limit = bounds.import_batch_rows
        try:
            # In batches as well: undoing must not hold the lock for long either.
            for _ in range(bounds.import_max_rows // limit + 1):
                async with unit_of_work(self.sessions) as session:
                    deleted = await KeywordRepository(session).delete_imported(
                        self.tenant_id, self.id_prefix, limit=limit
                    )
                if deleted < limit:
                    return
        except Exception as exc:
            log.error(
                "keywords.import_undo_failed",
                tenant_id=self.tenant_id,
                id_prefix=self.id_prefix,
                error=repr(exc),
            )

    async def close(self) -> None:
        return None


def open_sink(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    tally: ImportTally,
    mode: ImportMode,
) -> ImportSink:
    """The sink for ``mode`` on the session's database."""
    if mode == "best_effort":
        return _BatchCommits(sessions, tenant_id, tally)
    if session.get_bind().dialect.name == "sqlite":
        return _Staged(session, tenant_id, tally)
    return _InTransaction(session, tenant_id, tally)
