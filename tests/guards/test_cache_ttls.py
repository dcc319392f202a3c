"""Every shared-cache namespace has a TTL, positive, from a setting (invariant 4).

cashews keeps an entry stored with ``expire=0`` for ever, so a namespace whose
TTL is missing or zero is a cache that only grows (the review's defect: Redis
filling with entries nothing expires). Two guards:

* The cache API refuses a TTL that is not a positive number of seconds, both a
  namespace's default (``set_default_ttl``) and one given per call.
* Every namespace the code uses (found by the scan of tests/test_docs_caching.py)
  has its TTL declared by the service that owns it when the platform starts, and
  that TTL is the setting docs/caching.md names for it: each of those settings
  is set to its own value here and must come back as the namespace's TTL, within
  the platform's ceiling for cache TTLs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest
from annotated_types import Le

from tests.helpers import running
from tests.test_docs_caching import DOC, NAMESPACE_SECTION, PACKAGE, scan
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.server import build_all_in_one

_ROW = re.compile(r"^\|\s*`(?P<namespace>[^`]+)`\s*\|")
_TTL_SETTING = re.compile(r"XYNERGY_[A-Z0-9_]+_TTL_SECONDS")
_TTL_COLUMN = 4  # namespace | service, code | key parts | TTL | invalidated by
# A distinct value per documented setting, inside every TTL setting's bounds.
_FIRST_TEST_TTL = 120.0


def ttl_ceiling() -> float:
    """The longest TTL the platform allows a cache namespace (the settings' bound)."""
    field = Settings.model_fields["cache_default_ttl_seconds"]
    bound: float = next(m.le for m in field.metadata if isinstance(m, Le))  # type: ignore[assignment]
    return bound


def documented_ttl_settings() -> dict[str, list[str]]:
    """Namespace -> the environment variables its TTL cell in docs/caching.md names."""
    lines = DOC.read_text().splitlines()
    start = lines.index(NAMESPACE_SECTION) + 1
    found: dict[str, list[str]] = {}
    for line in lines[start:]:
        if line.startswith("#"):
            break
        match = _ROW.match(line)
        if match:
            cells = line.split("|")
            found[match["namespace"]] = _TTL_SETTING.findall(cells[_TTL_COLUMN])
    return found


@pytest.fixture(scope="module")
def namespaces() -> set[str]:
    found = scan(PACKAGE)
    assert found.unresolved == []
    # A scan that found nothing would pass everything below.
    assert {"content", "ai", "ai-budgets", "intake-stats"} <= set(found.namespaces)
    return set(found.namespaces)


class TestTheCacheRefusesAnEntryThatNeverExpires:
    @pytest.mark.parametrize("seconds", [0, 0.0, -1, math.nan, math.inf])
    def test_a_namespace_default(
        self, make_settings: Callable[..., Settings], seconds: float
    ) -> None:
        cache = PlatformCache(make_settings(), PlatformMetrics())
        with pytest.raises(ValueError, match="TTL must be positive"):
            cache.set_default_ttl("guarded", seconds)
        assert cache.declared_ttl("guarded") is None

    @pytest.mark.parametrize("seconds", [0, -5, math.nan])
    async def test_a_ttl_given_per_call(
        self, make_settings: Callable[..., Settings], seconds: float
    ) -> None:
        cache = PlatformCache(make_settings(), PlatformMetrics())
        await cache.open()
        computed = []

        async def compute() -> str:
            computed.append(1)
            return "value"

        try:
            with pytest.raises(ValueError, match="TTL must be positive"):
                await cache.get_or_compute("guarded", "t", ["k"], compute, ttl=seconds)
            with pytest.raises(ValueError, match="TTL must be positive"):
                await cache.store_json("guarded", "t", ["k"], '"v"', ttl=seconds)
            with pytest.raises(ValueError, match="TTL must be positive"):
                await cache.lookup_json("guarded", "t", ["k"], ttl=seconds)
            assert await cache.lookup_json("guarded", "t", ["k"]) is None, "nothing was stored"
        finally:
            await cache.close()
        assert computed == []

    def test_settings_refuse_a_zero_ttl(self, make_settings: Callable[..., Settings]) -> None:
        with pytest.raises(ValueError, match="positive"):
            make_settings(cache_ttls={"content": 0})


class TestEveryNamespaceHasItsSettingAsTtl:
    def test_every_namespace_documents_the_setting_of_its_ttl(self, namespaces: set[str]) -> None:
        documented = documented_ttl_settings()
        without = sorted(ns for ns in namespaces if not documented.get(ns))
        assert without == [], f"name the TTL setting of these namespaces in {DOC.name}"

    async def test_each_namespace_takes_its_ttl_from_that_setting(
        self,
        namespaces: set[str],
        make_settings: Callable[..., Settings],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        documented = documented_ttl_settings()
        values: dict[str, float] = {}
        for variable in sorted({v for ns in namespaces for v in documented.get(ns, [])}):
            values[variable] = _FIRST_TEST_TTL + len(values)
            monkeypatch.setenv(variable, str(values[variable]))
        app = build_all_in_one(make_settings())
        async with running(app):
            cache: PlatformCache = app.state.platform.cache
            declared = {ns: cache.declared_ttl(ns) for ns in sorted(namespaces)}

        undeclared = sorted(ns for ns, ttl in declared.items() if ttl is None)
        assert undeclared == [], "no service declares a TTL for these namespaces"
        ceiling = ttl_ceiling()
        for namespace, ttl in declared.items():
            from_settings = {values[v] for v in documented[namespace]}
            assert ttl in from_settings, (
                f"{namespace}: TTL {ttl} is not its setting ({documented[namespace]})"
            )
            assert ttl is not None
            assert 0 < ttl <= ceiling
