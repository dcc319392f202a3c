"""Every query the platform issues is bounded (ARCHITECTURE §4, invariant 5).

A pytest plugin (registered in ``tests/conftest.py``): it listens on SQLAlchemy's
``Engine`` class, so every engine of every test (aiosqlite, asyncpg, DBOS's own)
reports each statement, and a test during whose setup, call or teardown the
platform issued an unbounded ``SELECT`` errors at teardown, naming the statement,
the function that issued it and the fix.

A ``SELECT`` is bounded when one of these holds (checked on the SQLAlchemy
construct behind the statement, top level only):

1. It has a ``LIMIT`` or ``FETCH FIRST``.
2. It has no ``FROM`` (``SELECT 1``, ``SELECT EXISTS (...)``): one row.
3. Its select list holds an aggregate (``count``, ``sum``, ``max``, ...; not a
   window function, not one inside a subquery) and there is no ``GROUP BY``: one
   row. A ``GROUP BY`` needs a ``LIMIT`` (rule 1; or rule 4): groups grow with
   the data, even over a "fixed" set of values (say so with ``.limit(len(...))``).
4. Every table it reads from is pinned: all columns of its primary key or of a
   unique constraint/index (partial unique indexes do not count) are compared
   with ``=`` to a bound parameter, a scalar subquery, or a column of a table
   already pinned (so a many-to-one join from a pinned row stays pinned), in the
   ``WHERE`` clause or an inner join's ``ON`` (an outer join's ``ON`` pins only
   its right side). A single-column key compared with ``IN (<parameters>)`` is
   pinned too: at most one row per parameter the code passed. A ``FROM``
   subquery is pinned when it is itself bounded; a ``UNION`` when every part is.
   The unique keys come from ``xynergy.migrations.models.Base.metadata``.

Raw SQL (``text()``, driver SQL) naming a platform table is bounded only with a
``LIMIT``/``FETCH FIRST`` in its text. Anything else is unbounded.

Out of scope, each by one narrow rule:

* Statements that are not a ``SELECT`` (writes, DDL, ``PRAGMA``).
* Statements that read no table of ``Base.metadata``: DBOS's system tables (schema
  ``xynergy_dbos`` or its own SQLite file, through its own engine), Alembic's
  ``alembic_version``, PostgreSQL/SQLite catalogue queries.
* Statements issued by the tests themselves (fixtures such as
  ``tests/conftest.py``'s ``_empty_tables``, assertions reading rows back) or by
  Alembic migration scripts (``xynergy/migrations/``, which run once over a whole
  table by design): the caller is the nearest frame in ``src/xynergy`` or
  ``tests``, looked up only for statements already classified unbounded (through
  the async greenlet to the awaiting coroutine).

A query inside ``src`` that really must read every row is declared in
``ALLOWED_UNBOUNDED`` (the issuing function, with its reason).

Classification is cached per statement text: the text fixes everything the
rules look at (tables, ``WHERE``, ``LIMIT``), and a suite run repeats a few
thousand texts millions of times.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import greenlet  # type: ignore[import-untyped]
import pytest
from sqlalchemy import Table, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import (
    BinaryExpression,
    BindParameter,
    BooleanClauseList,
    Cast,
    ClauseElement,
    ColumnClause,
    Grouping,
    Over,
    TextClause,
    TypeCoerce,
)
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import (
    CTE,
    Alias,
    CompoundSelect,
    Exists,
    FromClause,
    Join,
    ScalarSelect,
    Select,
    SelectBase,
    Subquery,
    TableClause,
    Values,
)
from sqlalchemy.sql.util import find_tables

import xynergy
from xynergy.migrations.models import Base

__all__ = [
    "ALLOWED_UNBOUNDED",
    "Verdict",
    "Violation",
    "classify",
    "failure_message",
    "recording",
]

# The issuing function (module.qualname) -> why it must read every row.
ALLOWED_UNBOUNDED: dict[str, str] = {}

AGGREGATES = frozenset(
    {
        "count",
        "sum",
        "total",
        "min",
        "max",
        "avg",
        "bool_and",
        "bool_or",
        "every",
        "group_concat",
        "string_agg",
        "array_agg",
        "json_agg",
        "jsonb_agg",
        "json_group_array",
        "json_group_object",
        "percentile_cont",
        "percentile_disc",
    }
)
_RAW_SELECT = re.compile(r"^\s*(?:SELECT|WITH)\b", re.IGNORECASE)
_RAW_LIMIT = re.compile(r"\bLIMIT\b|\bFETCH\s+(?:FIRST|NEXT)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Distinct texts stay in the low thousands; IN lists of varying length add more.
_CACHE_MAX_ENTRIES = 50_000
_SHOWN_STATEMENT_CHARS = 400

# Unresolved, as frames name their files.
_SRC_DIR = str(Path(xynergy.__file__).parent) + "/"
_MIGRATIONS_DIR = _SRC_DIR + "migrations/"
_TESTS_DIR = str(Path(__file__).parents[1]) + "/"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one statement text was classified."""

    bounded: bool
    reason: str


OUT_OF_SCOPE = Verdict(bounded=True, reason="not a SELECT reading a platform table")


@dataclass(frozen=True, slots=True)
class Violation:
    """An unbounded SELECT and the platform function that issued it."""

    statement: str
    reason: str
    caller: str


# --- the platform's tables and their unique keys --------------------------------

_PLATFORM_KEYS: dict[str, list[frozenset[str]]] = {}
_PLATFORM_NAMES: set[str] = set()


def _unique_keys_of(table: Table) -> list[frozenset[str]]:
    keys = [frozenset(column.name for column in table.primary_key.columns)]
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            keys.append(frozenset(column.name for column in constraint.columns))
    for index in table.indexes:
        # A partial unique index allows many rows outside its WHERE.
        partial = any(
            options.get("where") is not None for options in index.dialect_options.values()
        )
        plain = all(isinstance(expression, ColumnClause) for expression in index.expressions)
        if index.unique and not partial and plain:
            keys.append(frozenset(column.name for column in index.columns))
    return [key for key in keys if key]


def _platform_keys() -> dict[str, list[frozenset[str]]]:
    if not _PLATFORM_KEYS:
        for table in Base.metadata.tables.values():
            _PLATFORM_KEYS[table.fullname] = _unique_keys_of(table)
            _PLATFORM_NAMES.add(table.name)
    return _PLATFORM_KEYS


# --- classification ---------------------------------------------------------------


def classify(statement: ClauseElement | str) -> Verdict:
    """Classify a statement (a SQLAlchemy construct, or raw SQL text)."""
    if isinstance(statement, TextClause):
        statement = statement.text
    if isinstance(statement, str):
        return _classify_raw(statement)
    if not isinstance(statement, (Select, CompoundSelect)):
        return OUT_OF_SCOPE
    keys = _platform_keys()
    tables = find_tables(statement, check_columns=True, include_aliases=True)
    if not any(table.fullname in keys for table in tables if isinstance(table, TableClause)):
        return OUT_OF_SCOPE
    return _classify_selectable(statement)


def _classify_raw(text: str) -> Verdict:
    if not _RAW_SELECT.match(text):
        return OUT_OF_SCOPE
    _platform_keys()
    if not _PLATFORM_NAMES.intersection(_WORD.findall(text)):
        return OUT_OF_SCOPE
    if _RAW_LIMIT.search(text):
        return Verdict(bounded=True, reason="LIMIT in raw SQL")
    return Verdict(bounded=False, reason="raw SQL reading a platform table without LIMIT")


def _has_limit(statement: Select[Any] | CompoundSelect[Any]) -> bool:
    return statement._limit_clause is not None or statement._fetch_clause is not None


def _classify_selectable(statement: ClauseElement) -> Verdict:
    if isinstance(statement, CompoundSelect):
        if _has_limit(statement):
            return Verdict(bounded=True, reason="LIMIT")
        for part in statement.selects:
            verdict = _classify_selectable(part)
            if not verdict.bounded:
                return Verdict(bounded=False, reason="a part of the UNION: " + verdict.reason)
        return Verdict(bounded=True, reason="every part of the UNION is bounded")
    if not isinstance(statement, Select):
        return Verdict(bounded=False, reason=f"unrecognised {type(statement).__name__}")
    if _has_limit(statement):
        return Verdict(bounded=True, reason="LIMIT")
    froms = statement.get_final_froms()
    if not froms:
        return Verdict(bounded=True, reason="no FROM: one row")
    grouped = bool(statement._group_by_clauses)
    if not grouped and any(_has_aggregate(column) for column in statement._raw_columns):
        return Verdict(bounded=True, reason="aggregate without GROUP BY: one row")
    unpinned = _unpinned_sources(statement, froms)
    if not unpinned:
        return Verdict(bounded=True, reason="equality on a unique key")
    if grouped:
        return Verdict(bounded=False, reason="GROUP BY without LIMIT (one row per group)")
    return Verdict(
        bounded=False,
        reason="no LIMIT, no aggregate, no unique-key equality on " + ", ".join(unpinned),
    )


def _has_aggregate(element: ClauseElement) -> bool:
    # Checked apart from the FromClause test: a SQL function is a FromClause too
    # (table-valued), and an aggregate may sit inside one (coalesce(sum(...), 0)).
    if isinstance(element, FunctionElement):
        if getattr(element, "name", "").lower() in AGGREGATES:
            return True
    # A window function keeps one row per input row; a subquery's aggregate says
    # nothing about the outer query's rows.
    elif isinstance(element, (Over, ScalarSelect, Exists, SelectBase, FromClause)):
        return False
    return any(_has_aggregate(child) for child in element.get_children())


@dataclass(frozen=True, slots=True)
class _Pin:
    """``target.column`` equals a parameter (``source`` None) or a column of ``source``."""

    target: str
    column: str
    source: str | None
    per_parameter: bool = False  # IN (<parameters>): pins single-column keys only


@dataclass(slots=True)
class _Sources:
    keys: dict[str, list[frozenset[str]]] = field(default_factory=dict)
    bounded: set[str] = field(default_factory=set)
    pins: list[_Pin] = field(default_factory=list)


def _source_name(from_clause: Any) -> str:
    if isinstance(from_clause, TableClause):
        return from_clause.fullname
    return str(getattr(from_clause, "name", None) or id(from_clause))


def _add_source(from_clause: FromClause, sources: _Sources) -> list[str]:
    """Record ``from_clause``'s row sources; answer their names."""
    if isinstance(from_clause, Join):
        names = _add_source(from_clause.left, sources)
        right = _add_source(from_clause.right, sources)
        if not from_clause.full:
            # An outer join keeps every left row: its ON pins only the right side.
            targets = set(right) if from_clause.isouter else None
            _add_pins(from_clause.onclause, sources, targets)
        return names + right
    name = _source_name(from_clause)
    element = getattr(from_clause, "element", None)
    if isinstance(from_clause, TableClause):
        sources.keys[name] = _platform_keys().get(name, [])
    elif isinstance(from_clause, Alias) and isinstance(element, TableClause):
        sources.keys[name] = _platform_keys().get(element.fullname, [])
    elif isinstance(from_clause, (Subquery, CTE)) and element is not None:
        sources.keys[name] = []
        if _classify_selectable(element).bounded:
            sources.bounded.add(name)
    elif isinstance(from_clause, Values):
        sources.keys[name] = []
        sources.bounded.add(name)
    else:
        sources.keys[name] = []
    return [name]


def _conjuncts(clause: Any) -> Iterator[ClauseElement]:
    if clause is None:
        return
    if isinstance(clause, BooleanClauseList) and clause.operator is operators.and_:
        for part in clause.clauses:
            yield from _conjuncts(part)
    elif isinstance(clause, Grouping):
        yield from _conjuncts(clause.element)
    else:
        yield clause


def _is_parameter(element: Any) -> bool:
    if isinstance(element, BindParameter):
        return not element.expanding
    if isinstance(element, (Cast, TypeCoerce)):
        return _is_parameter(element.clause)
    if isinstance(element, Grouping):
        return _is_parameter(element.element)
    return isinstance(element, ScalarSelect)


def _column_source(element: Any, sources: _Sources) -> str | None:
    table = getattr(element, "table", None)
    if not isinstance(element, ColumnClause) or table is None:
        return None
    name = _source_name(table)
    return name if name in sources.keys else None


def _add_pins(clause: Any, sources: _Sources, targets: set[str] | None) -> None:
    for conjunct in _conjuncts(clause):
        if not isinstance(conjunct, BinaryExpression):
            continue
        left, right = conjunct.left, conjunct.right
        if conjunct.operator is operators.in_op:
            target = _column_source(left, sources)
            if target and isinstance(right, BindParameter) and right.expanding:
                sources.pins.append(_Pin(target, left.name, None, per_parameter=True))
            continue
        if conjunct.operator is not operators.eq:
            continue
        for column, other in ((left, right), (right, left)):
            target = _column_source(column, sources)
            if target is None or (targets is not None and target not in targets):
                continue
            if _is_parameter(other):
                sources.pins.append(_Pin(target, column.name, None))
            elif (source := _column_source(other, sources)) is not None:
                sources.pins.append(_Pin(target, column.name, source))


def _pinned(name: str, key: frozenset[str], sources: _Sources) -> bool:
    def column_pinned(column: str) -> bool:
        return any(
            pin.target == name
            and pin.column == column
            and (pin.source is None or pin.source in sources.bounded)
            and (not pin.per_parameter or len(key) == 1)
            for pin in sources.pins
        )

    return all(column_pinned(column) for column in key)


def _unpinned_sources(statement: Select[Any], froms: Sequence[FromClause]) -> list[str]:
    sources = _Sources()
    for from_clause in froms:
        _add_source(from_clause, sources)
    _add_pins(statement.whereclause, sources, None)
    changed = True
    while changed:
        changed = False
        for name, keys in sources.keys.items():
            if name not in sources.bounded and any(_pinned(name, key, sources) for key in keys):
                sources.bounded.add(name)
                changed = True
    return [name for name in sources.keys if name not in sources.bounded]


# --- who issued it ------------------------------------------------------------------


def _frames(frame: FrameType | None) -> Iterator[FrameType]:
    # Under an async engine the statement runs in a greenlet spawned by the awaiting
    # coroutine: its stack ends there, and continues in the parent greenlet.
    while frame is not None:
        yield frame
        frame = frame.f_back
    parent = greenlet.getcurrent().parent
    while parent is not None:
        frame = parent.gr_frame
        while frame is not None:
            yield frame
            frame = frame.f_back
        parent = parent.parent


_NOT_THE_PLATFORM = ""


def _platform_caller(frame: FrameType | None) -> tuple[str, str]:
    """The issuing function (module.qualname) and up to three src locations.

    Answers ``_NOT_THE_PLATFORM`` as the function when the nearest frame in src or
    tests belongs to a test or a migration script.
    """
    function = None
    locations: list[str] = []
    for current in _frames(frame):
        filename = current.f_code.co_filename
        if function is None and filename.startswith(_TESTS_DIR):
            return _NOT_THE_PLATFORM, ""
        if not filename.startswith(_SRC_DIR):
            continue
        if function is None:
            if filename.startswith(_MIGRATIONS_DIR):
                return _NOT_THE_PLATFORM, ""
            module = current.f_globals.get("__name__", "?")
            function = f"{module}.{current.f_code.co_qualname}"
        locations.append(f"src/xynergy/{filename[len(_SRC_DIR) :]}:{current.f_lineno}")
        if len(locations) == 3:
            break
    return function or "<unknown caller>", " <- ".join(locations)


# --- recording ------------------------------------------------------------------------

_verdicts: dict[str, Verdict] = {}
_active: list[Violation] | None = None


def _on_cursor_execute(
    _connection: Any,
    _cursor: Any,
    statement: str,
    _parameters: Any,
    context: Any,
    _executemany: bool,
) -> None:
    violations = _active
    if violations is None:
        return
    verdict = _verdicts.get(statement)
    if verdict is None:
        compiled = getattr(context, "compiled", None)
        verdict = classify(compiled.statement if compiled is not None else statement)
        if len(_verdicts) >= _CACHE_MAX_ENTRIES:
            _verdicts.clear()
        _verdicts[statement] = verdict
    if verdict.bounded:
        return
    function, where = _platform_caller(sys._getframe(1))
    if function == _NOT_THE_PLATFORM or function in ALLOWED_UNBOUNDED:
        return
    violations.append(Violation(statement, verdict.reason, f"{function} ({where})"))


@contextmanager
def recording() -> Iterator[list[Violation]]:
    """Collect the unbounded SELECTs issued by the platform inside the block."""
    global _active
    previous, _active = _active, []
    try:
        yield _active
    finally:
        _active = previous


def failure_message(violations: Iterable[Violation]) -> str | None:
    """The test's failure text for ``violations``; None when there are none."""
    unique = list(dict.fromkeys(violations))
    if not unique:
        return None
    lines = [
        f"{len(unique)} unbounded SELECT(s) issued by the platform during this test "
        "(ARCHITECTURE §4 invariant 5: every query has a LIMIT; counts are SQL COUNT):"
    ]
    for violation in unique:
        statement = " ".join(violation.statement.split())
        if len(statement) > _SHOWN_STATEMENT_CHARS:
            statement = statement[:_SHOWN_STATEMENT_CHARS] + " ..."
        lines += [f"- {violation.caller}: {violation.reason}", f"    {statement}"]
    lines.append(
        "Fix: add .limit(<a page size or a bound from settings>) to the query, count "
        "with SQL COUNT/SUM instead of reading rows, or look the row up by its primary "
        "or unique key. A query that must read every row goes into ALLOWED_UNBOUNDED in "
        "tests/guards/sql_bounds.py with its reason."
    )
    return "\n".join(lines)


# --- the plugin's hooks -----------------------------------------------------------------

_RECORDED = pytest.StashKey[list[Violation]]()


def pytest_configure(config: pytest.Config) -> None:
    event.listen(Engine, "before_cursor_execute", _on_cursor_execute)


def pytest_unconfigure(config: pytest.Config) -> None:
    if event.contains(Engine, "before_cursor_execute", _on_cursor_execute):
        event.remove(Engine, "before_cursor_execute", _on_cursor_execute)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    global _active
    _active = item.stash[_RECORDED] = []
    return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    global _active
    try:
        result = yield
    finally:
        _active = None
    recorded: list[Violation] = item.stash.get(_RECORDED, [])
    message = failure_message(recorded)
    if message is not None:
        pytest.fail(message, pytrace=False)
    return result
