"""Streaming parsers for keyword files: CSV and JSON lines, one row at a time.

The body is split into lines as chunks arrive and each line is decoded on its
own (a newline byte never occurs inside a UTF-8 sequence), so memory holds one
chunk and one unfinished line, never the file, and an undecodable line is one
rejected row rather than a failed import. Both limits are enforced while
reading: the total byte count and the length of any single line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from xynergy.platform.exceptions import PayloadTooLarge, ValidationFailed

__all__ = ["FIELDS", "FileFormat", "RawRow", "read_rows"]

FileFormat = Literal["csv", "ndjson"]
FIELDS = ("phrase", "locale", "tags", "target_url", "intent")
_OPTIONAL_TEXT = ("locale", "target_url", "intent")
TAG_SEPARATOR = "|"
_BOM = "\ufeff"
_CSV_UNFINISHED = "unexpected end of data"
_ALLOWED = "only " + ", ".join(FIELDS) + " are allowed"


@dataclass(frozen=True, slots=True)
class RawRow:
    """One data row as read: its line, and its fields or why it cannot be read."""

    line: int
    fields: dict[str, Any] | None
    error: str | None = None


async def _lines(
    chunks: AsyncIterable[bytes],
    *,
    max_bytes: int,
    max_line_bytes: int,
    on_progress: Callable[[int], None] | None,
) -> AsyncIterator[list[bytes]]:
    """The body's complete lines (without newline), a chunk's worth at a time."""
    received = 0
    pending = b""
    async for chunk in chunks:
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(
                f"The file is larger than {max_bytes} bytes; nothing was written."
            )
        if on_progress is not None:
            on_progress(len(chunk))
        lines = (pending + chunk).split(b"\n") if pending else chunk.split(b"\n")
        pending = lines.pop()
        if len(pending) > max_line_bytes:
            raise PayloadTooLarge(
                f"A line is longer than {max_line_bytes} bytes, more than any valid row "
                "can be; nothing was written."
            )
        if lines:
            if any(len(line) > max_line_bytes for line in lines):
                raise PayloadTooLarge(
                    f"A line is longer than {max_line_bytes} bytes, more than any valid row "
                    "can be; nothing was written."
                )
            yield lines
    if pending:
        yield [pending]


class _CsvReader:
    """CSV records from lines; a quoted field may span lines."""

    def __init__(self, max_record_bytes: int) -> None:
        self.columns: list[str] | None = None
        self.max_record_bytes = max_record_bytes
        # Bounded in bytes, not lines: pending_bytes is checked against max_record_bytes.
        self.pending: list[str] = []  # guard: allow XG005 bounded by pending_bytes
        self.pending_start = 0
        self.pending_bytes = 0

    def _header(self, cells: list[str]) -> None:
        columns = [cell.strip().lower() for cell in cells]
        if columns and columns[0].startswith(_BOM):
            columns[0] = columns[0][1:]
        if "phrase" not in columns:
            raise ValidationFailed("The CSV header row must name a 'phrase' column.")
        if not set(columns) <= set(FIELDS):
            raise ValidationFailed(f"Unknown CSV column: {_ALLOWED}.")
        if len(set(columns)) != len(columns):
            raise ValidationFailed("The CSV header row names a column twice.")
        self.columns = columns

    def _record(self, line: int, cells: list[str]) -> RawRow | None:
        if cells == [] or cells == [""]:
            return None  # a blank line is not a row
        if self.columns is None:
            self._header(cells)
            return None
        if len(cells) != len(self.columns):
            reason = f"expected {len(self.columns)} fields, found {len(cells)}"
            return RawRow(line, None, reason)
        fields: dict[str, Any] = dict(zip(self.columns, cells, strict=True))
        tags = fields.get("tags")
        fields["tags"] = tags.split(TAG_SEPARATOR) if tags else []
        return RawRow(line, fields)

    def feed(self, line: int, raw: bytes) -> RawRow | None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.pending.clear()
            return RawRow(line, None, "the line is not valid UTF-8")
        if line == 1 and text.startswith(_BOM):
            text = text[1:]
        if not self.pending:
            stripped = text[:-1] if text.endswith("\r") else text
            # Fast path, exact for csv's rules: no quotes, no stray CR.
            if '"' not in stripped and "\r" not in stripped:
                return self._record(line, stripped.split(","))
            self.pending_start, self.pending_bytes = line, 0
        self.pending.append(text + "\n")
        self.pending_bytes += len(raw) + 1
        try:
            cells = next(csv.reader(self.pending, strict=True), [])
        except csv.Error as exc:
            if _CSV_UNFINISHED in str(exc) and self.pending_bytes <= self.max_record_bytes:
                return None  # a quoted field continues on the next line
            self.pending.clear()
            return RawRow(self.pending_start, None, "malformed CSV row (check the quotes)")
        self.pending.clear()
        return self._record(self.pending_start, cells)

    def finish(self) -> RawRow | None:
        if self.pending:
            self.pending.clear()
            return RawRow(self.pending_start, None, "a quoted field is never closed")
        if self.columns is None:
            raise ValidationFailed("The CSV file has no header row.")
        return None


def _ndjson_row(line: int, raw: bytes) -> RawRow | None:
    if not raw.strip():
        return None
    try:
        value = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return RawRow(line, None, "the line is not valid UTF-8")
    except ValueError:
        return RawRow(line, None, "the line is not valid JSON")
    if not isinstance(value, dict):
        return RawRow(line, None, "the line is not a JSON object")
    if not value.keys() <= set(FIELDS):
        return RawRow(line, None, f"unknown field: {_ALLOWED}")
    if not isinstance(value.get("phrase"), str):
        return RawRow(line, None, "phrase must be a string")
    for name in _OPTIONAL_TEXT:
        if not isinstance(value.get(name), str | None):
            return RawRow(line, None, f"{name} must be a string or null")
    tags = value.get("tags")
    if tags is None:
        value["tags"] = []
    elif not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        return RawRow(line, None, "tags must be a list of strings")
    return RawRow(line, value)


def _rows_of(file_format: FileFormat, max_record_bytes: int) -> tuple[Any, Any]:
    if file_format == "csv":
        reader = _CsvReader(max_record_bytes)
        return reader.feed, reader.finish
    return _ndjson_row, lambda: None


async def read_rows(
    chunks: AsyncIterable[bytes],
    *,
    file_format: FileFormat,
    max_bytes: int,
    max_record_bytes: int,
    on_progress: Callable[[int], None] | None = None,
) -> AsyncIterator[list[RawRow]]:
    """The file's data rows, in order, a chunk's worth at a time.

    Raises:
        PayloadTooLarge: more than ``max_bytes`` in all, or a line longer than
            ``max_record_bytes``.
        ValidationFailed: the CSV header row is missing or wrong.
    """
    feed, finish = _rows_of(file_format, max_record_bytes)
    line = 0
    async for lines in _lines(
        chunks, max_bytes=max_bytes, max_line_bytes=max_record_bytes, on_progress=on_progress
    ):
        rows: list[RawRow] = []
        for raw in lines:
            line += 1
            row = feed(line, raw)
            if row is not None:
                rows.append(row)
        if rows:
            yield rows
    last = finish()
    if last is not None:
        yield [last]
