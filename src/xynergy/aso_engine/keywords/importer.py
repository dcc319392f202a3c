"""Bulk keyword import: a streamed file validated row by row, written in batches.

* Memory is bounded by one chunk, one batch and a compact fingerprint table of
  the keys seen so far (8 bytes a slot), never by the file.
* Each batch is one INSERT ... ON CONFLICT DO NOTHING executemany; the database,
  not a per-row SELECT, decides which keys exist already.
* In-file duplicates are found by a 64-bit fingerprint of the normalised
  (phrase, locale). A fingerprint hit is still sent to the database: a true
  duplicate then conflicts with its first occurrence (inserted or existing), so
  a fingerprint collision can never drop a row.
* Where the rows go depends on the mode and the database (``import_sinks``):
  best effort commits batch by batch, so a long import never holds the write
  lock for its whole duration; all or nothing runs inside a savepoint of the
  caller's unit of work (on SQLite staged first, so the lock is held only for
  the final insert). An all-or-nothing import with a rejected row rolls the
  savepoint back and reports; exceeding a bound (413) raises, the caller's unit
  of work rolls back and a best-effort import deletes its committed batches —
  in both modes, so a refused file never leaves half its rows behind.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from xynergy.aso_engine.config import AsoSettings
from xynergy.aso_engine.keywords.import_sinks import ImportSink, ImportTally, open_sink
from xynergy.aso_engine.keywords.parsing import FileFormat, RawRow, read_rows
from xynergy.aso_engine.keywords.rules import (
    INTENTS,
    LOCALE_MAX_CHARS,
    TAG_MAX_CHARS,
    KeywordInvalid,
    clean_keyword,
)
from xynergy.aso_engine.keywords.schemas import ImportMode, ImportReport
from xynergy.platform.exceptions import PayloadTooLarge

__all__ = ["ImportOutcome", "import_keywords", "max_record_bytes"]

_FINGERPRINT_INITIAL_SLOTS = 1024
# Linear probing stays short (a handful of probes) up to this fill.
_FINGERPRINT_MAX_FILL = 0.8
# A JSON string may spell each character as a 6-byte \uXXXX escape.
_ESCAPED_BYTES_PER_CHAR = 6
# Room for keys, quotes, separators and whitespace around the values of one row.
_ROW_SYNTAX_BYTES = 256
# About 5-10 ms of validation on one core: the longest another request waits for
# an import's turn on the event loop.
_ROWS_PER_LOOP_TURN = 64


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


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """The report, and whether the rows it counts as inserted were kept."""

    report: ImportReport
    written: bool


class _RolledBack(Exception):
    """Raised inside the savepoint to undo an all-or-nothing import."""


class _Batcher:
    """Collects clean rows and hands them to the sink a batch at a time."""

    def __init__(self, sink: ImportSink, tally: ImportTally) -> None:
        self.sink = sink
        self.tally = tally
        self.rows: list[dict[str, Any]] = []
        self.seen: list[bool] = []
        self.writing = True

    async def flush(self) -> None:
        if not self.rows:
            return
        await self.sink.write(self.rows, self.seen)
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
    sessions: async_sessionmaker[AsyncSession],
    tenant_id: str,
    chunks: AsyncIterable[bytes],
    file_format: FileFormat,
    mode: ImportMode,
    default_locale: str | None,
    bounds: AsoSettings,
    on_progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import keywords from a streamed CSV or JSON-lines file into ``tenant_id``.

    ``session`` is the caller's unit of work (all-or-nothing imports write in it);
    ``sessions`` opens the short units of work of best-effort batches.

    Raises:
        PayloadTooLarge: the file has more rows or bytes than ``bounds`` allow;
            nothing is written (the caller's unit of work rolls back).
        ValidationFailed: the CSV header row is missing or wrong.
    """
    tally = ImportTally(bounds)
    sink = open_sink(session, sessions, tenant_id=tenant_id, tally=tally, mode=mode)
    batcher = _Batcher(sink, tally)
    fingerprints = _Fingerprints()
    rows = read_rows(
        chunks,
        file_format=file_format,
        max_bytes=bounds.import_max_bytes,
        max_record_bytes=max_record_bytes(bounds),
        on_progress=on_progress,
    )

    async def take_all() -> None:
        async for raw_rows in rows:
            for raw in raw_rows:
                await _take(raw, tally, batcher, fingerprints, mode, default_locale)
                # Validating a row is pure CPU and a received chunk holds hundreds:
                # without a turn for the loop now and then, every other request of
                # the process would wait for whole chunks.
                if tally.received % _ROWS_PER_LOOP_TURN == 0:
                    await asyncio.sleep(0)
        if batcher.writing:
            await batcher.flush()
            await sink.finish()

    await sink.start()
    try:
        if not sink.atomic:
            try:
                await take_all()
            except BaseException:
                await sink.undo()
                raise
            return ImportOutcome(tally.report(mode), written=True)
        try:
            async with session.begin_nested():
                await take_all()
                if not batcher.writing:
                    raise _RolledBack
        except _RolledBack:
            tally.inserted = tally.duplicates_existing = 0
            return ImportOutcome(tally.report(mode), written=False)
        return ImportOutcome(tally.report(mode), written=True)
    finally:
        await sink.close()


async def _take(
    raw: RawRow,
    tally: ImportTally,
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
                        "id": batcher.sink.new_id(),
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
