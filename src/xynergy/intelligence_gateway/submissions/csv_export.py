"""Streamed CSV export of submissions: keyset batches, bounded, safe to open in a spreadsheet.

The export never holds more than one batch: each batch is read in its own short
session (the request's unit of work has ended by the time the body streams) and
positioned after the last row written, so rows written meanwhile neither shift
nor repeat what is exported.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.intelligence_gateway.submissions.admin_repository import (
    EXPORT_COLUMNS,
    SubmissionAdminRepository,
)
from xynergy.intelligence_gateway.submissions.admin_schemas import SubmissionFilters
from xynergy.platform.logging import get_logger
from xynergy.platform.pagination import PageParams

__all__ = ["HEADER", "export_rows", "safe_cell"]

log = get_logger(__name__)

HEADER: tuple[str, ...] = tuple(column.key for column in EXPORT_COLUMNS)
# A spreadsheet reads a cell starting with one of these as a formula (or, for
# tab and carriage return, strips them and then may): OWASP "CSV injection".
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_ID_INDEX = HEADER.index("id")
_CREATED_INDEX = HEADER.index("created_at")


def safe_cell(value: Any) -> str:
    """``value`` as CSV cell text that no spreadsheet evaluates."""
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.isoformat()
    elif isinstance(value, list):
        text = "; ".join(str(item) for item in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_TRIGGERS) else text


def _encode(rows: Iterable[Sequence[Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([safe_cell(value) for value in row] for row in rows)
    return buffer.getvalue().encode()


async def export_rows(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    tenant_id: str,
    filters: SubmissionFilters,
    batch_rows: int,
    max_rows: int,
) -> AsyncIterator[bytes]:
    """The CSV body: a header row, then at most ``max_rows`` rows, newest first."""
    yield _encode([HEADER])
    written = 0
    after: tuple[datetime, str] | None = None
    more = True
    while more and written < max_rows:
        params = PageParams(limit=min(batch_rows, max_rows - written), after=after)
        async with sessionmaker() as session:
            rows = await SubmissionAdminRepository(session).export_batch(
                tenant_id=tenant_id, filters=filters, params=params
            )
        # keyset_page fetches one row more than asked: its presence means "more to come".
        batch, more = rows[: params.limit], len(rows) > params.limit
        if batch:
            yield _encode(batch)
            written += len(batch)
            after = (batch[-1][_CREATED_INDEX], batch[-1][_ID_INDEX])
    if more:
        log.info("intake.export_truncated", tenant_id=tenant_id, rows=written)
