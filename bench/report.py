"""Medians per variant, ratios to the bare baseline, and the table / JSON output."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

# isort: split
# bench's own modules: bench/ is sys.path[0] when run as a script.
from load import LoadResult

__all__ = ["GOAL_RATIO", "Row", "format_table", "machine", "summarize", "to_json"]

# The target: the full platform stack keeps at least this share of bare req/s.
GOAL_RATIO = 0.60


@dataclass(frozen=True, slots=True)
class Row:
    """One variant: the median of each metric over its rounds."""

    variant: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    ratio: float
    errors: int
    rounds: list[LoadResult]


def summarize(samples: dict[str, list[LoadResult]], baseline: str) -> list[Row]:
    """Rows in ``samples`` order, ratios against the median req/s of ``baseline``."""
    base_rps = statistics.median(r.requests_per_second for r in samples[baseline])
    rows = []
    for variant, results in samples.items():
        rps = statistics.median(r.requests_per_second for r in results)
        rows.append(
            Row(
                variant=variant,
                requests_per_second=rps,
                p50_ms=statistics.median(r.p50_ms for r in results),
                p99_ms=statistics.median(r.p99_ms for r in results),
                ratio=rps / base_rps if base_rps else 0.0,
                errors=sum(r.errors for r in results),
                rounds=results,
            )
        )
    return rows


def machine() -> dict[str, Any]:
    """What the numbers depend on besides the code."""
    # Like nproc: the CPUs this process may run on, not all the host has.
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": cpus,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        # Other work on the machine skews everything; this says how busy it was.
        "loadavg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }


def format_table(rows: list[Row], header: list[str], goal_variants: str | Sequence[str]) -> str:
    """Plain-text table with the header lines above it and a goal line per goal variant."""
    names = ["variant", "req/s", "p50 ms", "p99 ms", "ratio", "errors"]
    cells = [
        [
            row.variant,
            f"{row.requests_per_second:,.0f}",
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
            f"{row.ratio:.2f}",
            str(row.errors),
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [names, *cells]) for i in range(len(names))]

    def line(values: list[str]) -> str:
        # The variant column reads left to right; numbers line up on the right.
        first = values[0].ljust(widths[0])
        rest = (value.rjust(width) for value, width in zip(values[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "-" * len(line(names))
    out = [*header, "", line(names), rule, *(line(c) for c in cells), rule]
    names_with_goal = [goal_variants] if isinstance(goal_variants, str) else goal_variants
    for goal in (row for name in names_with_goal for row in rows if row.variant == name):
        verdict = "met" if goal.ratio >= GOAL_RATIO else "NOT met"
        out.append(
            f"goal: {goal.variant!r} >= {GOAL_RATIO:.0%} of bare req/s -> "
            f"{goal.ratio:.1%} ({verdict}; informational, never an assertion)"
        )
    if any(row.errors for row in rows):
        out.append("warning: some requests failed (errors column); those rows are suspect")
    return "\n".join(out)


def _rounded(value: Any) -> Any:
    # Three decimals are below the run-to-run noise; more digits only mislead.
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value


def to_json(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The same results as a JSON-serialisable document."""
    return _rounded({**meta, "goal_ratio": GOAL_RATIO, "rows": [asdict(row) for row in rows]})
