"""Tests for tools/check_guards.py, the project's static guard checker.

Each bad_*.py fixture plants the defects one rule exists for; the tests pin the
exact (line, code) pairs so a rule that goes quiet, or fires twice, fails here.
Each good_*.py fixture holds the safe idiom next to it and must stay clean.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "tools" / "check_guards.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _load_checker() -> ModuleType:
    # tools/ is not a package; load the script by path. Registering it in
    # sys.modules first is required for its dataclass to resolve annotations.
    spec = importlib.util.spec_from_file_location("check_guards", CHECKER)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cg = _load_checker()


def found(fixture: str) -> list[tuple[int, str]]:
    path = FIXTURES / fixture
    findings = cg.check_source(path.read_text(encoding="utf-8"), str(path))
    return [(f.line, f.code) for f in findings]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # Fixed argv built from this repo's own paths, no shell: nothing untrusted.
    return subprocess.run(  # noqa: S603
        [sys.executable, str(CHECKER), *args],
        capture_output=True,
        text=True,
        check=False,
    )


class TestSqlBuiltFromStrings:
    def test_bad_fixture_flags_every_planted_query(self) -> None:
        assert found("bad_sql.py") == [
            (13, "XG001"),  # session.execute(text(f"... {x}"))
            (17, "XG001"),  # cursor.execute("..." % name)
            (21, "XG001"),  # exec_driver_sql("SELECT " + col + ...)
            (25, "XG001"),  # sa.text("...".format(table))
            (30, "XG001"),  # text(query), query = f"..." one line up
            (36, "XG001"),  # sqlalchemy.text(sql) after sql += f"..."
            (40, "XG001"),  # execute(PURGE_SQL), a module-level f-string
            (44, "XG001"),  # asyncpg fetchrow(f"...")
            (45, "XG001"),  # asyncpg fetch("..." + str(x))
            (46, "XG001"),  # asyncpg fetchval("..." % x)
            (47, "XG001"),  # asyncpg executemany(f"...")
        ]

    def test_good_fixture_is_clean(self) -> None:
        assert found("good_sql.py") == []

    def test_nested_text_call_is_reported_once(self) -> None:
        source = 'session.execute(text(f"SELECT * FROM t WHERE id = {x}"))\n'
        findings = cg.check_source(source)
        assert [(f.line, f.col, f.code) for f in findings] == [(1, 17, "XG001")]

    def test_local_assignment_shadows_module_level_query(self) -> None:
        source = (
            'q = f"SELECT {x}"\n'
            "def run(session):\n"
            '    q = "SELECT 1"\n'
            "    return session.execute(text(q))\n"
        )
        assert cg.check_source(source) == []

    def test_name_resolves_through_an_enclosing_function(self) -> None:
        source = (
            'def run(session, x):\n    q = f"SELECT {x}"\n    return lambda: session.execute(q)\n'
        )
        assert [(f.line, f.code) for f in cg.check_source(source)] == [(3, "XG001")]


class TestRedisKeys:
    def test_bad_fixture(self) -> None:
        assert found("bad_redis_keys.py") == [
            (7, "XG002"),  # await redis.keys("session:*")
            (11, "XG002"),  # r.keys(pattern=...)
            (15, "XG002"),  # execute_command("keys", ...)
        ]

    def test_good_fixture_is_clean(self) -> None:
        assert found("good_redis.py") == []


class TestWildcardCors:
    def test_bad_fixture(self) -> None:
        assert found("bad_cors.py") == [
            (8, "XG003"),  # CORSMiddleware, allow_origins=["*"]
            (12, "XG003"),  # allow_headers=("*",)
            (13, "XG003"),  # allow_methods="*"
            (14, "XG003"),  # expose_headers={"X-Request-Id", "*"}
            (15, "XG003"),  # allow_origin_regex with ".*"
            (20, "XG003"),  # allow_credentials=True
            (25, "XG003"),  # allow_credentials from a setting: only the literal False passes
            (27, "XG003"),  # the Access-Control-Allow-Credentials header spelled out
        ]

    def test_good_fixture_is_clean(self) -> None:
        assert found("good_cors.py") == []

    def test_the_platform_cors_allowing_credentials_is_a_finding(self) -> None:
        path = "src/xynergy/platform/middleware.py"
        source = (ROOT / path).read_text(encoding="utf-8")
        assert source.count("allow_credentials=False") == 1
        flipped = source.replace("allow_credentials=False", "allow_credentials=True")
        assert [f.code for f in cg.check_source(flipped, path)] == ["XG003"]


class TestModuleState:
    def test_bad_fixture(self) -> None:
        assert found("bad_module_state.py") == [
            (8, "XG004"),  # _CACHE = {} mutated in remember()
            (15, "XG004"),  # _SEEN: set[str] = set() .add()-ed
            (22, "XG004"),  # defaultdict(list), _BY_TENANT[t].append()
            (29, "XG004"),  # deque() without maxlen
            (36, "XG004"),  # rebound via `global _REGISTRY`
            (44, "XG004"),  # @lru_cache(maxsize=None)
            (49, "XG004"),  # @functools.lru_cache(None)
            (54, "XG004"),  # @functools.cache
            (59, "XG004"),  # @cache
        ]

    def test_finding_points_at_definition_and_names_mutation(self) -> None:
        source = "_CACHE = {}\n\ndef put(k, v):\n    _CACHE[k] = v\n"
        (finding,) = cg.check_source(source, "mod.py")
        assert (finding.line, finding.code) == (1, "XG004")
        assert "`_CACHE`" in finding.message
        assert "line 4" in finding.message

    def test_good_fixture_is_clean(self) -> None:
        assert found("good_module_state.py") == []


class TestInstanceState:
    def test_bad_fixture(self) -> None:
        assert found("bad_instance_state.py") == [
            (13, "XG005"),  # self.last_used[key] = now; a drain elsewhere is no bound
            (29, "XG005"),  # setdefault; a clear() on change is no bound
            (41, "XG005"),  # set().add
            (44, "XG005"),  # deque() without maxlen, appendleft
            (47, "XG005"),  # defaultdict(list)[k].append, reported once
            (50, "XG005"),  # reading a missing defaultdict key inserts it
            (53, "XG005"),  # OrderedDict()[k] = v
            (56, "XG005"),  # list += more
            (60, "XG005"),  # append inside a closure of a method
        ]

    def test_good_fixture_is_clean(self) -> None:
        # A len() check in the growing method, or in a method it calls, or through
        # a local computed from len(); bounded containers; allow comments.
        assert found("good_instance_state.py") == []

    def test_finding_names_the_attribute_the_method_and_the_definition(self) -> None:
        source = (
            "class C:\n"
            "    def __init__(self):\n"
            "        self.seen = {}\n"
            "    def note(self, k):\n"
            "        self.seen[k] = 1\n"
        )
        (finding,) = cg.check_source(source, "mod.py")
        assert (finding.line, finding.code) == (5, "XG005")
        assert "`self.seen`" in finding.message
        assert "line 3" in finding.message
        assert "note()" in finding.message

    def test_removing_the_size_check_is_a_finding(self) -> None:
        bounded = (
            "class C:\n"
            "    def __init__(self, bound):\n"
            "        self.bound = bound\n"
            "        self.seen = {}\n"
            "    def note(self, k):\n"
            "        if len(self.seen) < self.bound:\n"
            "            self.seen[k] = 1\n"
        )
        unbounded = bounded.replace("        if len(self.seen) < self.bound:\n    ", "")
        assert cg.check_source(bounded) == []
        assert [f.code for f in cg.check_source(unbounded)] == ["XG005"]

    def test_an_allow_on_a_wrapped_definition_covers_it(self) -> None:
        source = (
            "class C:\n"
            "    def __init__(self):\n"
            "        self.seen: dict[\n"
            "            str, int\n"
            "        ] = {}  # guard: allow XG005 keys come from code\n"
            "    def note(self, k):\n"
            "        self.seen[k] = 1\n"
        )
        assert cg.check_source(source) == []

    @pytest.mark.parametrize(
        ("path", "grows", "attribute"),
        [
            (
                "src/xynergy/platform/auth/verifier.py",
                "self._last_used[key_id] = now",
                "_last_used",
            ),
            (
                "src/xynergy/platform/middleware.py",
                "self._series[key] = children",
                "_series",
            ),
        ],
    )
    def test_the_platform_caps_are_what_keeps_the_source_clean(
        self, path: str, grows: str, attribute: str
    ) -> None:
        # The two caps an audit removed without any check noticing: taking each
        # condition away (keeping the write) must be a finding.
        source = (ROOT / path).read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        (index,) = [i for i, line in enumerate(lines) if line.strip() == grows]
        assert "len(self." + attribute + ")" in lines[index - 1]
        guard_indent = len(lines[index - 1]) - len(lines[index - 1].lstrip())
        uncapped = lines[: index - 1] + [" " * guard_indent + grows + "\n"] + lines[index + 1 :]
        assert not [f for f in cg.check_source(source, path) if f.code == "XG005"]
        findings = cg.check_source("".join(uncapped), path)
        assert [f.code for f in findings if attribute in f.message] == ["XG005"]


class TestAllowComments:
    def test_allow_with_reason_suppresses(self) -> None:
        assert found("good_allow_comment.py") == []

    def test_missing_reason_wrong_code_and_malformed(self) -> None:
        assert found("bad_allow_comment.py") == [
            (7, "XG002"),  # no reason: does not suppress...
            (7, "XG000"),  # ...and is a finding of its own
            (11, "XG002"),  # allows XG001, but the finding is XG002
            (15, "XG000"),  # "allow keys please": no code
        ]

    def test_several_codes_on_one_line(self) -> None:
        source = 'r.keys(f"{p}"); db.execute(f"{q}")  # guard: allow XG001, XG002 fixture only\n'
        assert cg.check_source(source) == []

    def test_allow_text_inside_a_string_is_not_a_comment(self) -> None:
        source = 'r.keys("# guard: allow XG002 not a comment")\n'
        assert [f.code for f in cg.check_source(source)] == ["XG002"]


class TestApi:
    def test_finding_is_frozen_and_formats_as_path_line_col(self) -> None:
        finding = cg.Finding("a.py", 3, 5, "XG002", "msg")
        assert str(finding) == "a.py:3:5: XG002 msg"
        with pytest.raises(dataclasses.FrozenInstanceError):
            finding.line = 4

    def test_unparsable_source_is_a_finding(self) -> None:
        assert [(f.line, f.code) for f in cg.check_source("def (:\n")] == [(1, "XG000")]

    def test_check_paths_walks_a_directory(self) -> None:
        findings = cg.check_paths([FIXTURES])
        files = {Path(f.path).name for f in findings}
        assert files == {
            "bad_sql.py",
            "bad_redis_keys.py",
            "bad_cors.py",
            "bad_module_state.py",
            "bad_allow_comment.py",
            "bad_instance_state.py",
        }
        assert {f.code for f in findings} == {
            "XG000",
            "XG001",
            "XG002",
            "XG003",
            "XG004",
            "XG005",
        }


class TestCli:
    def test_findings_exit_1_with_one_line_each(self) -> None:
        result = run_cli(str(FIXTURES / "bad_redis_keys.py"))
        assert result.returncode == 1
        lines = result.stdout.splitlines()
        assert len(lines) == 3
        assert lines[0].endswith(
            "bad_redis_keys.py:7:18: XG002 Redis KEYS blocks the server; use scan_iter"
        )

    def test_clean_file_exit_0_with_summary(self) -> None:
        result = run_cli(str(FIXTURES / "good_sql.py"))
        assert result.returncode == 0
        assert result.stdout == "check_guards: 1 file(s) checked, no findings\n"

    def test_missing_path_exit_2(self, tmp_path: Path) -> None:
        assert run_cli(str(tmp_path / "nope")).returncode == 2

    def test_project_source_is_clean(self) -> None:
        # The guard that matters: the real code base under src/ stays clean.
        src = Path(__file__).resolve().parents[2] / "src"
        result = run_cli(str(src))
        assert result.returncode == 0, result.stdout + result.stderr
