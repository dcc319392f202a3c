"""Bulk keyword import: a streamed file validated row by row, written in batches.

* Memory is bounded by one chunk, one batch and a compact fingerprint table of
  the keys seen so far (8 bytes a slot), never by the file.
* Each batch is one INSERT ... ON CONFLICT DO NOTHING executemany; the database,
  not a per-row SELECT, decides which keys exist already.
* In-file duplicates are found by a 64-bit fingerprint of the normalised
  (phrase, locale). A fingerprint hit is still sent to the database: a true
  duplicate then conflicts with its first occurrence (inserted or existing), so
  a fingerprint collision can never drop a row.
* The whole import runs inside a savepoint of the caller's unit of work. An
  all-or-nothing import with a rejected row rolls the savepoint back and
  reports; exceeding a bound (413) raises, and the caller's unit of work rolls
  back — in both modes, so a refused file never leaves half its rows behind.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords.parsing import FileFormat, RawRow, read_rows
from xynergy.aso_engine.keywords.repository import KeywordRepository
from xynergy.aso_engine.keywords.rules import (
    INTENTS,
    LOCALE_MAX_CHARS,
    TAG_MAX_CHARS,
    KeywordInvalid,
    clean_keyword,
)
from xynergy.aso_engine.keywords.schemas import ImportMode, ImportRejection, ImportReport
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.exceptions import PayloadTooLarge

__all__ = ["ImportOutcome", "import_keywords", "max_record_bytes"]

_FINGERPRINT_INITIAL_SLOTS = 1024
# Linear probing stays short (a handful of probes) up to this fill.
_FINGERPRINT_MAX_FILL = 0.8
# A JSON string may spell each character as a 6-byte \uXXXX escape.
_ESCAPED_BYTES_PER_CHAR = 6
# Room for keys, quotes, separators and whitespace around the values of one row.
_ROW_SYNTAX_BYTES = 256


def max_record_bytes(bounds: AsoSettings) -> int:
    """The longest line a valid row could need: anything longer is refused unread."""
    longest_intent = max(len(intent) for intent in INTENTS)
    chars = (
        bounds.keyword_phrase_max_chars
        + LOCALE_MAX_CHARS
        + bounds.keyword_tags_max * (TAG_MAX_CHARS + 4)
        + bounds.url_max_chars
        + longest_intent
    )
    return chars * _ESCAPED_BYTES_PER_CHAR + _ROW_SYNTAX_BYTES


class _Fingerprints:
    """A set of 64-bit fingerprints in one flat array (open addressing)."""

    def __init__(self) -> None:
        self._slots = array("q", bytes(8 * _FINGERPRINT_INITIAL_SLOTS))
        self._used = 0

    @staticmethod
    def _of(key: tuple[str, str]) -> int:
        # 0 marks an empty slot; hash() is stable within the process, which is
        # all one import needs.
        return hash(key) or 1

    def _place(self, slots: array[int], value: int) -> bool:
        mask = len(slots) - 1
        index = value & mask
        while True:
            current = slots[index]
            if current == 0:
                slots[index] = value
                return True
            if current == value:
                return False
            index = (index + 1) & mask

    def add(self, key: tuple[str, str]) -> bool:
        """Add ``key``; False if its fingerprint was there already."""
        if (self._used + 1) > len(self._slots) * _FINGERPRINT_MAX_FILL:
            grown = array("q", bytes(16 * len(self._slots)))
            for value in self._slots:
                if value:
                    self._place(grown, value)
            self._slots = grown
        added = self._place(self._slots, self._of(key))
        self._used += added
        return added


@dataclass
class _Tally:
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


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The report, and whether the rows it counts as inserted were kept."""

    report: ImportReport
    written: bool


class _RolledBack(Exception):
    """Raised inside the savepoint to undo an all-or-nothing import."""


class _Batcher:
    """Collects clean rows and writes them a batch at a time."""

    def __init__(self, session: AsyncSession, tenant_id: str, tally: _Tally) -> None:
        self.repository = KeywordRepository(session)
        self.tenant_id = tenant_id
        self.tally = tally
        self.rows: list[dict[str, Any]] = []
        self.seen: list[bool] = []
        self.writing = True

    async def flush(self) -> None:
        if not self.rows:
            return
        inserted = await self.repository.insert_ignoring_existing(
            self.rows, tenant_id=self.tenant_id, created_at=utcnow()
        )
        tally = self.tally
        for row, seen in zip(self.rows, self.seen, strict=True):
            if row["id"] in inserted:
                tally.inserted += 1
            elif seen:
                tally.duplicates_in_file += 1
            else:
                tally.duplicates_existing += 1
        self.rows.clear()
        self.seen.clear()

    def stop_writing(self) -> None:
        """Nothing more will be kept: drop the batch and only count from here on."""
        self.writing = False
        self.tally.duplicates_in_file += sum(self.seen)
        self.rows.clear()
        self.seen.clear()


async def import_keywords(
    session: AsyncSession,
    *,
    tenant_id: str,
    chunks: AsyncIterable[bytes],
    file_format: FileFormat,
    mode: ImportMode,
    default_locale: str | None,
    bounds: AsoSettings,
    on_progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import keywords from a streamed CSV or JSON-lines file into ``tenant_id``.

    Raises:
        PayloadTooLarge: the file has more rows or bytes than ``bounds`` allow;
            nothing is written (the caller's unit of work rolls back).
        ValidationFailed: the CSV header row is missing or wrong.
    """
    tally = _Tally(bounds)
    batcher = _Batcher(session, tenant_id, tally)
    fingerprints = _Fingerprints()
    rows = read_rows(
        chunks,
        file_format=file_format,
        max_bytes=bounds.import_max_bytes,
        max_record_bytes=max_record_bytes(bounds),
        on_progress=on_progress,
    )
    try:
        async with session.begin_nested():
            async for raw_rows in rows:
                for raw in raw_rows:
                    await _take(raw, tally, batcher, fingerprints, mode, default_locale)
            if batcher.writing:
                await batcher.flush()
            if not batcher.writing:
                raise _RolledBack
    except _RolledBack:
        tally.inserted = tally.duplicates_existing = 0
        return ImportOutcome(tally.report(mode), written=False)
    return ImportOutcome(tally.report(mode), written=True)


async def _take(
    raw: RawRow,
    tally: _Tally,
    batcher: _Batcher,
    fingerprints: _Fingerprints,
    mode: ImportMode,
    default_locale: str | None,
) -> None:
    tally.received += 1
    bounds = tally.bounds
    if tally.received > bounds.import_max_rows:
        raise PayloadTooLarge(
            f"The file has more than {bounds.import_max_rows} rows; nothing was written."
        )
    fields = raw.fields
    if fields is None:
        reason = raw.error or "unreadable row"
    else:
        locale = fields.get("locale") or default_locale
        if not locale:
            reason = "locale is missing and no default locale was given"
        else:
            try:
                clean = clean_keyword(
                    phrase=fields["phrase"],
                    locale=locale,
                    tags=fields["tags"],
                    target_url=fields.get("target_url"),
                    intent=fields.get("intent"),
                    bounds=bounds,
                )
            except KeywordInvalid as exc:
                reason = str(exc)
            else:
                seen = not fingerprints.add((clean.phrase, clean.locale))
                if not batcher.writing:
                    tally.duplicates_in_file += seen
                    return
                batcher.rows.append(
                    {
                        "id": new_id(),
                        "phrase": clean.phrase,
                        "locale": clean.locale,
                        "tags": clean.tags,
                        "target_url": clean.target_url,
                        "intent": clean.intent,
                    }
                )
                batcher.seen.append(seen)
                if len(batcher.rows) >= bounds.import_batch_rows:
                    await batcher.flush()
                return
    tally.reject(raw.line, reason)
    if mode == "all_or_nothing" and batcher.writing:
        batcher.stop_writing()
