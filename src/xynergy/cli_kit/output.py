"""What commands print: JSON for programs, plain aligned lines for people.

Plain output is written as is, never wrapped or cut to the terminal's width: an
id that is folded or shortened at 80 columns cannot be copied into the next
command. JSON is one document on stdout, whatever the width.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer

__all__ = ["print_json", "print_record", "print_rows", "print_warning"]

_GAP = "  "


def print_json(payload: Any) -> None:
    """``payload`` as one indented JSON document."""
    typer.echo(json.dumps(payload, indent=2, default=str, ensure_ascii=False))


def print_record(fields: Sequence[tuple[str, str]]) -> None:
    """``label  value`` lines with the values aligned."""
    width = max((len(label) for label, _ in fields), default=0)
    for label, value in fields:
        typer.echo(f"{label + ':':<{width + 1}}{_GAP}{value}")


def print_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    next_cursor: str | None,
    empty: str,
) -> None:
    """A table in aligned columns (a header, then one line per row), then the next
    page's ``--cursor`` when there is one."""
    if not rows:
        typer.echo(empty)
        return
    widths = [max(len(column), *(len(row[i]) for row in rows)) for i, column in enumerate(columns)]
    for cells in (columns, *rows):
        typer.echo(
            _GAP.join(
                f"{cell:<{width}}" for cell, width in zip(cells, widths, strict=True)
            ).rstrip()
        )
    if next_cursor:
        typer.echo(f"next page: --cursor {next_cursor}")


def print_warning(message: str) -> None:
    """One ``warning:`` line on stderr: the command succeeded, with a caveat."""
    typer.echo(f"warning: {message}", err=True)
