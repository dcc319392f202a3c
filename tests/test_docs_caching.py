"""docs/caching.md lists every cache the code has, and nothing else.

The code is read, not imported: every call of a shared-cache method
(``get_or_compute``, ``lookup_json``, ``tag``, ``set_default_ttl``...) on a
receiver named like a cache names its namespace, as a string or a module
constant (followed through ``from ... import``); every construction of a
bounded in-process cache (``TTLCache``, ``LRUCache``, ``LocalEntries``,
``ReadinessProbe``...) or ``functools`` cache decorator is one in-process cache,
named ``<module under src/xynergy>:<attribute or function>``. A namespace the
scan cannot resolve fails too: a namespace must be a constant someone can find.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "xynergy"
DOC = ROOT / "docs" / "caching.md"

# PlatformCache's methods that take a namespace first (platform/cache.py).
NAMESPACE_METHODS = frozenset(
    {"get_or_compute", "get_or_compute_json", "lookup_json", "store_json", "key", "tag"}
) | {"set_default_ttl"}
IN_PROCESS_CLASSES = frozenset(
    {
        "TTLCache",
        "LRUCache",
        "LFUCache",
        "TLRUCache",
        "FIFOCache",
        "RRCache",
        "LocalEntries",
        "ReadinessProbe",
        "SharedWindow",
    }
)
FUNCTOOLS_CACHES = frozenset({"lru_cache", "cache"})
# The module that defines the shared cache calls its own methods with parameters.
DEFINING_MODULE = "platform/cache.py"
NAMESPACE_SECTION = "### Namespaces"
IN_PROCESS_SECTION = "## In-process caches"
_FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`\s*\|")


@dataclass
class Found:
    """What a scan of a package found."""

    namespaces: dict[str, set[str]] = field(default_factory=dict)  # name -> modules
    in_process: set[str] = field(default_factory=set)
    unresolved: list[str] = field(default_factory=list)


class _Modules:
    """Parsed modules of one package, with their string constants and imports."""

    def __init__(self, package: Path) -> None:
        self.package = package
        self.trees: dict[str, ast.Module] = {}

    def relative(self, path: Path) -> str:
        return path.relative_to(self.package).as_posix()

    def tree(self, relative: str) -> ast.Module | None:
        if relative not in self.trees:
            path = self.package / relative
            if not path.is_file():
                return None
            self.trees[relative] = ast.parse(path.read_text(), filename=str(path))
        return self.trees[relative]

    def module_path(self, dotted: str) -> str | None:
        top = self.package.name
        if dotted != top and not dotted.startswith(top + "."):
            return None
        parts = dotted.split(".")[1:]
        for candidate in ("/".join(parts) + ".py", "/".join([*parts, "__init__.py"])):
            if (self.package / candidate).is_file():
                return candidate
        return None

    def constant(self, relative: str, name: str, depth: int = 0) -> str | None:
        """The string a module-level ``name`` holds, following imports a few levels."""
        tree = self.tree(relative)
        if tree is None or depth > 4:
            return None
        for node in tree.body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        return value.value
                    return None
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        source = self.module_path(node.module)
                        if source is not None:
                            return self.constant(source, alias.name, depth + 1)
        return None


def _namespace_argument(call: ast.Call) -> ast.expr | None:
    if call.args:
        return call.args[0]
    return next((k.value for k in call.keywords if k.arg == "namespace"), None)


def _functools_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "functools":
            names |= {alias.asname or alias.name for alias in node.names}
    return names & FUNCTOOLS_CACHES


def _decorator_name(decorator: ast.expr) -> str | None:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id
    if (
        isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "functools"
    ):
        return target.attr
    return None


def _assigned_name(node: ast.Assign | ast.AnnAssign) -> str | None:
    target = node.targets[0] if isinstance(node, ast.Assign) else node.target
    if isinstance(target, ast.Attribute):
        return target.attr
    if isinstance(target, ast.Name):
        return target.id
    return None


def _constructed_class(value: ast.expr | None) -> str | None:
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
    return name if name in IN_PROCESS_CLASSES else None


def scan(package: Path) -> Found:
    """Every shared-cache namespace and in-process cache in ``package``."""
    modules = _Modules(package)
    found = Found()
    for path in sorted(package.rglob("*.py")):
        relative = modules.relative(path)
        tree = modules.tree(relative)
        assert tree is not None
        functools_caches = _functools_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                name = _assigned_name(node)
                if name is not None and _constructed_class(node.value) is not None:
                    found.in_process.add(f"{relative}:{name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    decorator_name = _decorator_name(decorator)
                    # ``@functools.lru_cache`` or ``@functools.lru_cache(maxsize=...)``
                    called = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if decorator_name in functools_caches or (
                        decorator_name in FUNCTOOLS_CACHES and isinstance(called, ast.Attribute)
                    ):
                        found.in_process.add(f"{relative}:{node.name}")
            elif (
                isinstance(node, ast.Call)
                and relative != DEFINING_MODULE
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in NAMESPACE_METHODS
                and "cache" in ast.unparse(node.func.value).lower()
            ):
                argument = _namespace_argument(node)
                namespace: str | None = None
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    namespace = argument.value
                elif isinstance(argument, ast.Name):
                    namespace = modules.constant(relative, argument.id)
                if namespace is None:
                    found.unresolved.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:80]}")
                else:
                    found.namespaces.setdefault(namespace, set()).add(relative)
    return found


def documented(text: str, section: str) -> set[str]:
    """The first-column code spans of the table rows under heading ``section``."""
    lines = text.splitlines()
    start = lines.index(section) + 1
    level = section.split(" ", 1)[0]
    names: set[str] = set()
    for line in lines[start:]:
        if line.startswith("#") and len(line.split(" ", 1)[0]) <= len(level):
            break
        match = _FIRST_CELL.match(line)
        if match:
            names.add(match[1])
    return names


@pytest.fixture(scope="module")
def found() -> Found:
    return scan(PACKAGE)


class TestDocsCaching:
    def test_every_namespace_is_a_constant_the_scan_can_resolve(self, found: Found) -> None:
        assert found.unresolved == []

    def test_every_shared_cache_namespace_is_documented(self, found: Found) -> None:
        in_docs = documented(DOC.read_text(), NAMESPACE_SECTION)
        missing = {name: sorted(where) for name, where in found.namespaces.items()}
        missing = {name: where for name, where in missing.items() if name not in in_docs}
        assert missing == {}, f"add these namespaces to {DOC.name}"
        assert in_docs - set(found.namespaces) == set(), "documented but not in the code"

    def test_every_in_process_cache_is_documented(self, found: Found) -> None:
        in_docs = documented(DOC.read_text(), IN_PROCESS_SECTION)
        assert found.in_process - in_docs == set(), f"add these caches to {DOC.name}"
        assert in_docs - found.in_process == set(), "documented but not in the code"

    def test_the_scan_sees_the_known_namespaces(self, found: Found) -> None:
        # A scan that silently found nothing would pass the checks above.
        assert {"content", "trending", "ai", "marketing-research"} <= set(found.namespaces)
        assert "platform/auth/verifier.py:_verified" in found.in_process


PLANTED_CONSTANTS = 'NAMESPACE = "planted-ns"\n'
PLANTED_USER = """
from functools import lru_cache
from cachetools import TTLCache
from pkg.names import NAMESPACE as IMPORTED

LOCAL = "local-ns"


class Service:
    def __init__(self, cache):
        self._cache = cache
        self._seen: TTLCache[str, bool] = TTLCache(10, 1)

    async def read(self, tenant):
        await self._cache.get_or_compute(IMPORTED, tenant, [], None)
        await self._cache.lookup_json(namespace=LOCAL, tenant_id=tenant, parts=[])
        self._cache.tag("literal-ns", tenant)
        await self._cache.store_json(self.name, tenant, [], "")


@lru_cache(maxsize=4)
def pure(value):
    return value
"""


class TestScan:
    @pytest.fixture
    def planted(self, tmp_path: Path) -> Found:
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "names.py").write_text(PLANTED_CONSTANTS)
        (package / "service.py").write_text(PLANTED_USER)
        return scan(package)

    def test_finds_namespaces_by_literal_constant_and_import(self, planted: Found) -> None:
        assert set(planted.namespaces) == {"planted-ns", "local-ns", "literal-ns"}

    def test_reports_a_namespace_it_cannot_resolve(self, planted: Found) -> None:
        assert len(planted.unresolved) == 1
        assert "self.name" in planted.unresolved[0]

    def test_finds_in_process_caches(self, planted: Found) -> None:
        assert planted.in_process == {"service.py:_seen", "service.py:pure"}

    def test_a_namespace_missing_from_the_doc_is_caught(self, planted: Found) -> None:
        doc = "### Namespaces\n\n| namespace |\n|---|\n| `planted-ns` |\n| `local-ns` |\n"
        assert set(planted.namespaces) - documented(doc, NAMESPACE_SECTION) == {"literal-ns"}
