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


class TestPoolsOutsideTheirOwners:
    def test_bad_fixture(self) -> None:
        assert found("bad_pools.py") == [
            (14, "XG006"),  # aiohttp.ClientSession() per request
            (19, "XG006"),  # aiohttp.TCPConnector
            (20, "XG006"),  # ClientSession imported under another name
            (25, "XG006"),  # httpx.AsyncClient
            (27, "XG006"),  # httpx.Client
            (32, "XG006"),  # Redis(...)
            (33, "XG006"),  # Redis.from_url
            (34, "XG006"),  # redis.asyncio (aliased).from_url
            (35, "XG006"),  # ConnectionPool.from_url
            (40, "XG006"),  # asyncpg.connect
            (41, "XG006"),  # asyncpg.create_pool
            (42, "XG006"),  # create_async_engine
        ]

    def test_good_fixture_is_clean(self) -> None:
        # The shared session, a timeout object, an allow comment, a local namesake.
        assert found("good_pools.py") == []

    @pytest.mark.parametrize(
        ("path", "source"),
        [
            ("src/xynergy/platform/http.py", "import aiohttp\naiohttp.ClientSession()\n"),
            ("src/xynergy/platform/db/engine.py", "import asyncpg\nasyncpg.create_pool('x')\n"),
            ("src/xynergy/platform/runtime.py", "from redis.asyncio import Redis\nRedis()\n"),
            ("src/xynergy/platform/services.py", "import httpx\nhttpx.AsyncClient()\n"),
        ],
    )
    def test_an_owner_may_build_its_own_kind(self, path: str, source: str) -> None:
        assert cg.check_source(source, path) == []

    @pytest.mark.parametrize(
        "path",
        [
            "src/xynergy/platform/cache.py",  # owns a Redis connection, not HTTP sessions
            "src/xynergy/ai_routing/providers/openai.py",
            "src/xynergy/platform/httpx.py",  # a name that merely starts like an owner's
        ],
    )
    def test_anyone_else_building_a_session_is_a_finding(self, path: str) -> None:
        source = "import aiohttp\naiohttp.ClientSession()\n"
        assert [f.code for f in cg.check_source(source, path)] == ["XG006"]

    def test_a_provider_building_a_session_per_request_is_a_finding(self) -> None:
        # The review's defect: the provider's upstream makes its own session per call.
        path = "src/xynergy/ai_routing/providers/_http.py"
        source = (ROOT / path).read_text(encoding="utf-8")
        shared = "async with self._session.post("
        assert source.count(shared) == 1
        per_request = source.replace(
            shared, "async with aiohttp.ClientSession() as session, session.post("
        )
        assert not cg.check_source(source, path)
        assert [f.code for f in cg.check_source(per_request, path)] == ["XG006"]


class TestLiteralsThatBelongElsewhere:
    def test_bad_fixture(self) -> None:
        assert found("bad_literals.py") == [
            (4, "XG009"),  # a service registry of URLs
            (5, "XG009"),  # localhost
            (6, "XG009"),  # an IPv6 address
            (8, "XG009"),  # an upstream's address
            (12, "XG008"),  # a doctype
            (13, "XG008"),  # markup in an f-string
            (17, "XG008"),  # a script element
        ]

    def test_good_fixture_is_clean(self) -> None:
        assert found("good_literals.py") == []

    def test_a_settings_module_may_name_a_url_but_not_markup(self) -> None:
        source = 'DEFAULT = "http://127.0.0.1:8080"\nPAGE = "<p>hi</p>"\n'
        codes = [f.code for f in cg.check_source(source, "src/xynergy/platform/config.py")]
        assert codes == ["XG008"]
        codes = [f.code for f in cg.check_source(source, "src/xynergy/platform/services.py")]
        assert codes == ["XG009", "XG008"]

    def test_inline_html_in_a_service_is_a_finding(self) -> None:
        # The review's finding: the assistant's page as a string in main.py.
        path = ROOT / "src" / "xynergy" / "ai_assistant" / "app.py"
        source = (
            path.read_text(encoding="utf-8") + '\nCHAT_PAGE = "<html><body>chat</body></html>"\n'
        )
        assert {f.code for f in cg.check_source(source, str(path))} == {"XG008"}


class TestUnnamedTasks:
    def test_bad_fixture(self) -> None:
        assert found("bad_tasks.py") == [
            (13, "XG007"),  # asyncio.create_task
            (14, "XG007"),  # loop.create_task
            (15, "XG007"),  # TaskGroup.create_task
            (16, "XG007"),  # create_task imported from asyncio
            (17, "XG007"),  # asyncio.ensure_future
            (18, "XG007"),  # ensure_future imported from asyncio
            (19, "XG007"),  # asyncio.Task(...)
            (24, "XG007"),  # renamed only in a nested function
            (33, "XG007"),  # another task of the function is renamed, not this one
            (40, "XG007"),  # asyncio.shield(coroutine()): an unnamed task that runs on
        ]

    def test_good_fixture_is_clean(self) -> None:
        # name=, set_name in the same function, **kwargs, an allow comment, gather,
        # shield of a named task or of an existing one.
        assert found("good_tasks.py") == []

    def test_removing_a_name_from_the_platform_is_a_finding(self) -> None:
        path = "src/xynergy/platform/cache.py"
        source = (ROOT / path).read_text(encoding="utf-8")
        named = ', name="cache-tracking")'
        assert source.count(named) == 1
        assert not cg.check_source(source, path)
        unnamed = source.replace(named, ")")
        assert [f.code for f in cg.check_source(unnamed, path)] == ["XG007"]


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
            "bad_pools.py",
            "bad_tasks.py",
            "bad_literals.py",
        }
        assert {f.code for f in findings} == {
            "XG000",
            "XG001",
            "XG002",
            "XG003",
            "XG004",
            "XG005",
            "XG006",
            "XG007",
            "XG008",
            "XG009",
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
