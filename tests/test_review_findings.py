"""``docs/review-findings.md`` is checked: every guard it names exists.

The document maps each finding of the review to what fails if the finding
returns. This module parses its tables and fails when a row names a test that
pytest does not collect (a renamed or deleted test), a guard code that
``tools/check_guards.py`` does not define, a ruff rule that ``pyproject.toml``
does not enable, a ``bench/README.md`` heading that does not exist, or when a
row has no guard and no reason, an id repeats, or the totals at the bottom of
the document no longer match the table.

Guard column syntax (items separated by ``; ``):

- ``tests/....py::TestClass::test_name``, ``tests/....py::test_name`` or a whole
  file ``tests/....py`` (it must collect at least one test), in backticks;
- ``XG001`` …: a code of ``tools/check_guards.py`` (documented in its
  docstring and emitted by its code), in backticks;
- ``ruff:S608``: a ruff rule the project's ``select`` enables, in backticks;
- ``[bench: label](../bench/README.md#anchor)``: a heading of
  ``bench/README.md``, by its GitHub anchor;
- ``n/a: reason``: alone in the cell, for a finding this design cannot have.

``python -m tests.test_review_findings`` prints the totals table to paste at the
bottom of the document.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "review-findings.md"
GUARDS = ROOT / "tools" / "check_guards.py"
PYPROJECT = ROOT / "pyproject.toml"
BENCH_README = ROOT / "bench" / "README.md"

FINDINGS_HEADER = (
    "id",
    "finding",
    "service(s)",
    "how the platform makes it impossible or bounded",
    "guard",
    "source",
)
TOTALS_HEADER = (
    "group",
    "rows",
    "guarded by tests",
    "by static checks",
    "by bench rows",
    "not applicable",
)
ALL_GROUPS = "**all**"
# The issues whose texts quote the review (the tracker's issues 2-17; 7-9 do not exist).
KNOWN_ISSUES = frozenset({2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17})

ID_RE = re.compile(r"[A-Z]+(?:-[A-Z0-9]+)*-\d+")
TEST_RE = re.compile(r"tests/[\w/]+\.py(?:::\w+){0,2}")
CODE_RE = re.compile(r"XG\d{3}")
RUFF_RE = re.compile(r"ruff:([A-Z]+[0-9]+)")
BENCH_RE = re.compile(r"\[bench: [^\]]+\]\(\.\./bench/README\.md#([\w-]+)\)")
SOURCE_ITEM_RE = re.compile(r"issue (\d+)")
NOT_APPLICABLE = "n/a:"
COLLECT_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Guard:
    kind: str  # "test", "code", "ruff", "bench" or "n/a"
    value: str


@dataclass(frozen=True)
class Row:
    line: int
    group: str
    id: str
    finding: str
    services: str
    how: str
    guards: tuple[Guard, ...]
    source: str

    def kinds(self) -> set[str]:
        return {guard.kind for guard in self.guards}


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    totals: list[tuple[str, ...]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Known:
    """What exists in the repository for guards to point at."""

    collected: frozenset[str]
    collection_errors: tuple[str, ...]
    guard_codes: frozenset[str]
    ruff_rules: frozenset[str]
    bench_anchors: frozenset[str]


# --- parsing ----------------------------------------------------------------------


def split_cells(line: str) -> tuple[str, ...]:
    return tuple(cell.strip() for cell in line.strip().strip("|").split("|"))


def parse_guards(cell: str) -> tuple[tuple[Guard, ...], list[str]]:
    """The guards of one cell, and what could not be read."""
    cell = cell.strip()
    if not cell:
        return (), []
    if cell.startswith(NOT_APPLICABLE):
        reason = cell.removeprefix(NOT_APPLICABLE).strip()
        return ((Guard("n/a", reason),), [] if reason else ["n/a without a reason"])
    guards: list[Guard] = []
    problems: list[str] = []
    for raw in cell.split("; "):
        item = raw.strip()
        bare = item.strip("`")
        if bench := BENCH_RE.fullmatch(item):
            guards.append(Guard("bench", bench.group(1)))
        elif TEST_RE.fullmatch(bare):
            guards.append(Guard("test", bare))
        elif CODE_RE.fullmatch(bare):
            guards.append(Guard("code", bare))
        elif ruff := RUFF_RE.fullmatch(bare):
            guards.append(Guard("ruff", ruff.group(1)))
        elif item.startswith(NOT_APPLICABLE):
            problems.append("n/a must be alone in its cell")
        else:
            problems.append(f"unreadable guard {item!r}")
    return tuple(guards), problems


def parse_document(text: str) -> Parsed:
    """Rows of every findings table (grouped by their ``##`` heading) and the totals."""
    parsed = Parsed()
    group = ""
    table: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            group = line.removeprefix("## ").strip()
        if not line.startswith("|"):
            table = None
            continue
        cells = split_cells(line)
        if table is None:
            table = {FINDINGS_HEADER: "findings", TOTALS_HEADER: "totals"}.get(cells, "other")
            if table == "other" and cells[0] in {FINDINGS_HEADER[0], TOTALS_HEADER[0]}:
                # A misspelt header would otherwise drop its rows from every check.
                parsed.problems.append(f"line {number}: table header differs from the checked one")
            continue
        if set(line.replace("|", "").strip()) <= {"-", ":", " "}:
            continue
        if table == "totals":
            parsed.totals.append(cells)
        elif table == "findings":
            if len(cells) != len(FINDINGS_HEADER):
                parsed.problems.append(f"line {number}: {len(cells)} cells, expected 6")
                continue
            row_id, finding, services, how, guard_cell, source = cells
            guards, problems = parse_guards(guard_cell)
            parsed.problems += [f"line {number}, {row_id}: {problem}" for problem in problems]
            parsed.rows.append(Row(number, group, row_id, finding, services, how, guards, source))
    return parsed


# --- what exists ------------------------------------------------------------------


def collect_node_ids(files: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Node ids pytest collects from ``files`` (the ones that exist), and its errors.

    One subprocess for all the files, not ``pytest.main``: this suite runs under
    xdist, and a second session inside a worker would share its plugins, stash and
    event loop.
    ``addopts`` is emptied so marker-deselected suites (the cluster's) count too.
    """
    existing = sorted({name for name in files if (ROOT / name).is_file()})
    if not existing:
        return frozenset(), ()
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "-o",
        "addopts=",
        "--continue-on-collection-errors",
        *existing,
    ]
    result = subprocess.run(  # noqa: S603 - this interpreter's pytest on our own files
        command,
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=COLLECT_TIMEOUT_SECONDS,
        check=False,
    )
    lines = result.stdout.splitlines()
    collected = frozenset(line.strip() for line in lines if line.startswith("tests/"))
    return collected, tuple(line for line in lines if line.startswith("ERROR"))


def node_exists(node: str, collected: frozenset[str]) -> bool:
    return node in collected or any(
        name.startswith((f"{node}::", f"{node}[")) for name in collected
    )


def defined_guard_codes(source: str) -> frozenset[str]:
    """Codes both documented in the module docstring and emitted by its code."""
    tree = ast.parse(source)
    documented = set(re.findall(r"^(XG\d{3})\s", ast.get_docstring(tree) or "", re.MULTILINE))
    emitted = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and CODE_RE.fullmatch(node.value)
    }
    return frozenset(documented & emitted)


def selector_covers(selector: str, code: str) -> bool:
    """Ruff's selector semantics: ``E`` covers ``E501`` but not ``EM101``."""
    if selector == "ALL" or code == selector:
        return True
    if not code.startswith(selector):
        return False
    return selector[-1].isdigit() or code[len(selector)].isdigit()


def enabled_ruff_rules(pyproject: str, all_rules: Sequence[dict[str, object]]) -> frozenset[str]:
    ruff = tomllib.loads(pyproject)["tool"]["ruff"]
    lint = ruff.get("lint", {})
    select = list(lint.get("select", ruff.get("select", ["E4", "E7", "E9", "F"])))
    select += lint.get("extend-select", [])
    ignore = list(lint.get("ignore", ruff.get("ignore", [])))
    preview = bool(lint.get("preview", ruff.get("preview", False)))
    return frozenset(
        str(rule["code"])
        for rule in all_rules
        if (preview or not rule.get("preview"))
        and any(selector_covers(selector, str(rule["code"])) for selector in select)
        and not any(selector_covers(selector, str(rule["code"])) for selector in ignore)
    )


def ruff_rule_table() -> list[dict[str, object]]:
    result = subprocess.run(  # noqa: S603 - this interpreter's ruff, fixed arguments
        [sys.executable, "-m", "ruff", "rule", "--all", "--output-format", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rules: list[dict[str, object]] = json.loads(result.stdout)
    return rules


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def heading_anchors(markdown: str) -> frozenset[str]:
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    fenced = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#{1,6} (.+)", line)):
            anchor = github_anchor(heading.group(1))
            anchors.add(anchor if seen[anchor] == 0 else f"{anchor}-{seen[anchor]}")
            seen[anchor] += 1
    return frozenset(anchors)


# --- checking ---------------------------------------------------------------------


def check_rows(rows: Sequence[Row], known: Known) -> list[str]:
    """Every problem of the table, one line each, naming the row."""
    problems: list[str] = []
    ids = Counter(row.id for row in rows)
    for row in rows:
        where = f"line {row.line}, {row.id}"
        if not ID_RE.fullmatch(row.id):
            problems.append(f"{where}: id is not like ASO-1 or SEC-AUTHN-2")
        if ids[row.id] > 1:
            problems.append(f"{where}: id repeats")
        if not (row.finding and row.services and row.how):
            problems.append(f"{where}: finding, service(s) and how must all be filled in")
        if not row.guards:
            problems.append(f"{where}: no guard and no n/a reason")
        issues = [int(number) for number in SOURCE_ITEM_RE.findall(row.source)]
        if not issues or not set(issues) <= KNOWN_ISSUES:
            problems.append(f"{where}: source {row.source!r} names no known issue")
        for guard in row.guards:
            if guard.kind == "test" and not node_exists(guard.value, known.collected):
                problems.append(f"{where}: pytest collects no {guard.value}")
            elif guard.kind == "code" and guard.value not in known.guard_codes:
                problems.append(f"{where}: tools/check_guards.py defines no {guard.value}")
            elif guard.kind == "ruff" and guard.value not in known.ruff_rules:
                problems.append(f"{where}: ruff rule {guard.value} is not enabled in pyproject")
            elif guard.kind == "bench" and guard.value not in known.bench_anchors:
                problems.append(f"{where}: bench/README.md has no heading #{guard.value}")
    return problems


def count_kinds(rows: Iterable[Row]) -> tuple[int, int, int, int, int]:
    """rows, rows with a test, with a static check, with a bench row, not applicable."""
    counts: Counter[str] = Counter()
    for row in rows:
        kinds = row.kinds()
        counts["rows"] += 1
        counts["test"] += "test" in kinds
        counts["static"] += bool(kinds & {"code", "ruff"})
        counts["bench"] += "bench" in kinds
        counts["n/a"] += "n/a" in kinds
    return counts["rows"], counts["test"], counts["static"], counts["bench"], counts["n/a"]


def totals_table(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """The totals rows: one per group in document order, then all groups."""
    groups = list(dict.fromkeys(row.group for row in rows))
    table = [
        (group, *map(str, count_kinds(row for row in rows if row.group == group)))
        for group in groups
    ]
    return [*table, (ALL_GROUPS, *map(str, count_kinds(rows)))]


def render_totals(rows: Sequence[Row]) -> str:
    lines = [
        "| " + " | ".join(TOTALS_HEADER) + " |",
        "|" + "---|" * len(TOTALS_HEADER),
        *("| " + " | ".join(row) + " |" for row in totals_table(rows)),
    ]
    return "\n".join(lines) + "\n"


def summary(rows: Sequence[Row]) -> str:
    total, tests, static, bench, not_applicable = count_kinds(rows)
    return (
        f"rows: {total}; guarded by tests: {tests}; by static checks: {static}; "
        f"by bench rows: {bench}; not applicable: {not_applicable} "
        "(a row with several kinds of guard counts under each)\n"
    )


# --- the document -----------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> Parsed:
    return parse_document(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def known(document: Parsed) -> Known:
    referenced = {
        guard.value.split("::")[0]
        for row in document.rows
        for guard in row.guards
        if guard.kind == "test"
    }
    # The planted tables below rename a test of this file.
    referenced.add("tests/platform/test_route_walk.py")
    collected, errors = collect_node_ids(referenced)
    return Known(
        collected=collected,
        collection_errors=errors,
        guard_codes=defined_guard_codes(GUARDS.read_text(encoding="utf-8")),
        ruff_rules=enabled_ruff_rules(PYPROJECT.read_text(encoding="utf-8"), ruff_rule_table()),
        bench_anchors=heading_anchors(BENCH_README.read_text(encoding="utf-8")),
    )


class TestTheDocument:
    def test_every_table_row_is_readable(self, document: Parsed) -> None:
        assert document.rows, "no findings table found"
        assert document.problems == []

    def test_every_guard_exists_and_every_row_has_one(self, document: Parsed, known: Known) -> None:
        problems = check_rows(document.rows, known)
        assert problems == [], "\n".join(["pytest collection errors:", *known.collection_errors])

    def test_the_totals_at_the_bottom_match_the_table(self, document: Parsed) -> None:
        assert document.totals == totals_table(document.rows), (
            "regenerate with `python -m tests.test_review_findings`:\n"
            + render_totals(document.rows)
        )


# --- the checker, on planted tables -------------------------------------------------

REAL_TEST = "tests/platform/test_route_walk.py::test_public_routes_are_exactly_the_declared_ones"
HEADER = "| " + " | ".join(FINDINGS_HEADER) + " |\n|---|---|---|---|---|---|\n"


def planted(*rows: str) -> Parsed:
    return parse_document("## Planted\n\n" + HEADER + "".join(f"{row}\n" for row in rows))


def problems_of(known: Known, *rows: str) -> list[str]:
    parsed = planted(*rows)
    return parsed.problems + check_rows(parsed.rows, known)


class TestTheChecker:
    def test_a_good_row_passes(self, known: Known) -> None:
        row = f"| T-1 | finding | aso | how | `{REAL_TEST}`; `XG001`; `ruff:S608` | issue 3 |"
        assert problems_of(known, row) == []

    def test_a_renamed_test_is_caught(self, known: Known) -> None:
        renamed = REAL_TEST.replace("declared_ones", "declared_routes")
        problems = problems_of(known, f"| T-1 | f | s | h | `{renamed}` | issue 2 |")
        assert problems == [f"line 5, T-1: pytest collects no {renamed}"]

    def test_a_missing_test_file_is_caught(self, known: Known) -> None:
        row = "| T-1 | f | s | h | `tests/guards/test_nothing_here.py` | issue 16 |"
        assert problems_of(known, row) == [
            "line 5, T-1: pytest collects no tests/guards/test_nothing_here.py"
        ]

    def test_an_unknown_guard_code_is_caught(self, known: Known) -> None:
        problems = problems_of(known, "| T-1 | f | s | h | `XG999` | issue 2 |")
        assert problems == ["line 5, T-1: tools/check_guards.py defines no XG999"]

    def test_a_ruff_rule_not_selected_is_caught(self, known: Known) -> None:
        # PTH (flake8-use-pathlib) is not selected; PT is, and must not cover it.
        problems = problems_of(known, "| T-1 | f | s | h | `ruff:PTH123` | issue 2 |")
        assert problems == ["line 5, T-1: ruff rule PTH123 is not enabled in pyproject"]

    def test_an_unknown_bench_heading_is_caught(self, known: Known) -> None:
        row = "| T-1 | f | s | h | [bench: gone](../bench/README.md#no-such-heading) | issue 3 |"
        assert problems_of(known, row) == [
            "line 5, T-1: bench/README.md has no heading #no-such-heading"
        ]

    def test_a_row_without_a_guard_is_caught(self, known: Known) -> None:
        problems = problems_of(known, "| T-1 | f | s | h |  | issue 2 |")
        assert problems == ["line 5, T-1: no guard and no n/a reason"]

    def test_not_applicable_needs_a_reason_and_stands_alone(self, known: Known) -> None:
        assert problems_of(known, "| T-1 | f | s | h | n/a: | issue 2 |") == [
            "line 5, T-1: n/a without a reason"
        ]
        mixed = f"| T-1 | f | s | h | `{REAL_TEST}`; n/a: because | issue 2 |"
        assert problems_of(known, mixed) == ["line 5, T-1: n/a must be alone in its cell"]

    def test_repeated_ids_are_caught(self, known: Known) -> None:
        row = f"| T-1 | f | s | h | `{REAL_TEST}` | issue 2 |"
        assert problems_of(known, row, row) == [
            "line 5, T-1: id repeats",
            "line 6, T-1: id repeats",
        ]

    def test_an_unknown_source_is_caught(self, known: Known) -> None:
        row = f"| T-1 | f | s | h | `{REAL_TEST}` | issue 8 |"
        assert problems_of(known, row) == ["line 5, T-1: source 'issue 8' names no known issue"]

    def test_a_misspelt_header_is_caught(self) -> None:
        document = "## Planted\n\n| id | finding | services | how | guard | source |\n|---|\n"
        assert parse_document(document).problems == [
            "line 3: table header differs from the checked one"
        ]

    def test_drifted_totals_are_caught(self) -> None:
        table = planted(
            f"| T-1 | f | s | h | `{REAL_TEST}` | issue 2 |",
            "| T-2 | f | s | h | n/a: no such thing here | issue 2 |",
        )
        assert totals_table(table.rows) == [
            ("Planted", "2", "1", "0", "0", "1"),
            (ALL_GROUPS, "2", "1", "0", "0", "1"),
        ]
        stale = parse_document(
            "## Planted\n\n"
            + HEADER
            + f"| T-1 | f | s | h | `{REAL_TEST}` | issue 2 |\n\n"
            + render_totals(table.rows)
        )
        assert stale.totals != totals_table(stale.rows)


def test_ruff_selectors_cover_what_ruff_says() -> None:
    assert selector_covers("E", "E501")
    assert not selector_covers("E", "EM101")
    assert selector_covers("S6", "S608")
    assert selector_covers("T20", "T201")
    assert not selector_covers("PT", "PTH123")
    assert selector_covers("ALL", "PTH123")


def test_github_anchors_match_the_bench_headings() -> None:
    assert github_anchor("Issue 10 (items 1–2): the server `xynergy serve` runs") == (
        "issue-10-items-12-the-server-xynergy-serve-runs"
    )
    assert heading_anchors("# A\n```\n# not a heading\n```\n# A\n") == {"a", "a-1"}


def main() -> None:
    rows = parse_document(DOC.read_text(encoding="utf-8")).rows
    sys.stdout.write(render_totals(rows) + "\n" + summary(rows))


if __name__ == "__main__":
    main()
