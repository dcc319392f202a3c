"""The README's scopes table: generated from the route table, and never stale.

A route or a scope added without ``make reference`` must fail here, so these
tests add one (to a copy of the app table, or by patching the known scopes) and
check that the committed README is then reported out of date.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from xynergy.platform.app import create_service_app
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes
from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.config import Settings
from xynergy.platform.routing import api_router
from xynergy.reference import documents, scopes
from xynergy.reference.documents import README, SCOPES_BEGIN, SCOPES_END, generate

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "tools" / "gen_reference.py"
_ROW = re.compile(
    r"^\|\s*(?P<scope>[^|]+?)\s*\|\s*(?P<method>[A-Z]*)\s*\|\s*(?P<path>[^|]+?)\s*\|", re.MULTILINE
)


@pytest.fixture(scope="module")
def apps() -> dict[str, FastAPI]:
    return scopes.mounted_apps()


def _readme_table() -> str:
    text = (ROOT / README).read_text(encoding="utf-8")
    return text.split(SCOPES_BEGIN, 1)[1].split(SCOPES_END, 1)[0]


def _rows(table: str) -> list[tuple[str, str, str]]:
    return [
        (m["scope"].strip("`"), m["method"], m["path"].strip("`"))
        for m in _ROW.finditer(table)
        if m["scope"] != "scope"
    ]


def _readme_is_stale(apps: dict[str, FastAPI]) -> bool:
    files = generate(ROOT, apps=apps, models=[])
    return next(f for f in files if f.path == README).is_stale


# Module level: endpoint annotations are resolved from the module's globals.
AnalyticsReader = Annotated[AuthContext, Depends(require_scopes("analytics:read"))]


def _app_with_route(settings: Settings, path: str) -> FastAPI:
    router = api_router()

    @router.get(path)
    async def report(auth: AnalyticsReader) -> dict[str, str]:
        """A route the README has not seen."""
        return {"tenant": auth.tenant_id}

    return create_service_app(slug="reports", title="Reports", settings=settings, routers=[router])


class TestReadmeTable:
    def test_readme_matches_the_route_table(self, apps: dict[str, FastAPI]) -> None:
        readme = next(f for f in generate(ROOT, apps=apps, models=[]) if f.path == README)
        assert not readme.is_stale, f"run `make reference`:\n{readme.diff()}"

    def test_every_known_scope_has_a_row(self) -> None:
        listed = {scope for scope, _, _ in _rows(_readme_table())}
        assert KNOWN_SCOPES <= listed

    def test_every_scoped_route_is_listed_under_each_of_its_scopes(
        self, apps: dict[str, FastAPI]
    ) -> None:
        rows = set(_rows(_readme_table()))
        for use in scopes.route_uses(apps):
            scope = use.scope if use.scope is not None else scopes.PUBLIC
            assert (scope, use.method, use.path) in rows, use

    def test_the_route_walk_reaches_every_service(self, apps: dict[str, FastAPI]) -> None:
        paths = {use.path for use in scopes.route_uses(apps)}
        assert {
            "/admin/keys",
            "/aso-engine/api/content",
            "/ai-routing-engine/v1/chat/completions",
        } <= paths
        assert "/marketing-engine/campaigns/generate" in paths
        assert "/intelligence-gateway/api/contact" in paths


class TestRendering:
    def test_a_scope_without_routes_says_no_route_yet(self) -> None:
        table = scopes.render_scopes_table([], known_scopes={"assistant:chat"})
        assert "| `assistant:chat` | | no route yet | | |" in table

    def test_a_route_needing_two_scopes_is_listed_under_both(self) -> None:
        uses = [
            scopes.RouteUse("a:x", "/p", "POST", ("b:y",), "writes"),
            scopes.RouteUse("b:y", "/p", "POST", ("a:x",), "writes"),
        ]
        table = scopes.render_scopes_table(uses, known_scopes=set())
        assert "| `a:x` | POST | `/p` | `b:y` | writes |" in table
        assert "| `b:y` | POST | `/p` | `a:x` | writes |" in table

    def test_public_routes_need_no_key(self, apps: dict[str, FastAPI]) -> None:
        public = {(use.method, use.path) for use in scopes.route_uses(apps) if use.scope is None}
        assert ("POST", "/intelligence-gateway/api/contact") in public
        assert ("GET", "/healthz") in public
        assert ("GET", "/aso-engine/openapi.json") in public
        assert ("HEAD", "/aso-engine/openapi.json") not in public
        assert f"| {scopes.PUBLIC} | GET | `/healthz` |" in _readme_table()


class TestDrift:
    def test_a_new_route_makes_the_readme_stale(
        self, apps: dict[str, FastAPI], make_settings: Callable[..., Settings]
    ) -> None:
        extra = _app_with_route(make_settings(), "/api/reports")
        files = generate(ROOT, apps={**apps, "/reports": extra}, models=[])
        readme = next(f for f in files if f.path == README)
        assert readme.is_stale
        assert "+| `analytics:read` | GET | `/reports/api/reports` |  | reads |" in readme.diff()

    def test_a_new_scope_makes_the_readme_stale(
        self, apps: dict[str, FastAPI], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert not _readme_is_stale(apps)
        monkeypatch.setattr(scopes, "KNOWN_SCOPES", KNOWN_SCOPES | {"reports:read"})
        assert _readme_is_stale(apps)

    def test_markers_must_be_present_once(self) -> None:
        with pytest.raises(ValueError, match="expected one"):
            documents.splice("no markers here", SCOPES_BEGIN, SCOPES_END, "x")
        with pytest.raises(ValueError, match="expected one"):
            documents.splice(f"{SCOPES_END}\n{SCOPES_BEGIN}", SCOPES_BEGIN, SCOPES_END, "x")

    def test_splice_keeps_everything_outside_the_markers(self) -> None:
        document = f"before\n{SCOPES_BEGIN}\nold\n{SCOPES_END}\nafter\n"
        spliced = documents.splice(document, SCOPES_BEGIN, SCOPES_END, "new\n")
        assert spliced == f"before\n{SCOPES_BEGIN}\nnew\n{SCOPES_END}\nafter\n"


def _load_generator() -> ModuleType:
    # tools/ is not a package: load the script by path.
    spec = importlib.util.spec_from_file_location("gen_reference", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TestCommand:
    def test_check_fails_with_a_diff_then_writing_fixes_it(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for name in (README, documents.SETTINGS_REFERENCE, documents.ENV_EXAMPLE):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, tmp_path / name)
        readme = tmp_path / README
        edited = readme.read_text().replace(
            "| `content:read` | GET |", "| `content:read` | PUT |", 1
        )
        readme.write_text(edited)
        generator = _load_generator()

        assert generator.main(["--check", "--root", str(tmp_path)]) == 1
        out = capsys.readouterr()
        assert "+| `content:read` | GET |" in out.out
        assert "-| `content:read` | PUT |" in out.out
        assert "make reference" in out.err
        assert readme.read_text() == edited  # --check writes nothing

        assert generator.main(["--root", str(tmp_path)]) == 0
        assert generator.main(["--check", "--root", str(tmp_path)]) == 0
        assert readme.read_text() == (ROOT / README).read_text()
