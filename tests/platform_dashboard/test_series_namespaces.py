"""Cache namespaces: hit rate and evictions from the rollups (every replica), entries and
evictions of this process's in-process copies, in one listing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.helpers import running
from tests.platform_dashboard.rollup_apps import recorder, traffic_app
from tests.platform_dashboard.test_series import operator_headers, values, window
from xynergy.platform.cache import PlatformCache
from xynergy.platform.config import Settings

NAMESPACES = "/api/metrics/cache-namespaces"
TENANT = "t" * 32
L1_BOUND = 10  # the smallest cache_memory_max_entries


async def _use(cache: PlatformCache) -> None:
    """shared-b: a miss, then two hits (one entry kept here); then shared-a: 12 entries
    stored, which push out b's entry and two of a's own."""

    async def compute() -> dict[str, int]:
        return {"v": 1}

    for _ in range(3):
        await cache.get_or_compute_json("shared-b", TENANT, ["k"], compute)
    for index in range(L1_BOUND + 2):
        await cache.store_json("shared-a", TENANT, [index], '{"v": 1}')


class TestNamespaceStats:
    async def test_hit_rate_entries_and_evictions_per_namespace(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url, cache_memory_max_entries=L1_BOUND)
        app = traffic_app(settings)
        async with running(app) as client:
            platform = app.state.platform
            await _use(platform.cache)
            await recorder(platform).flush()
            headers = await operator_headers(platform)
            now = datetime.now(UTC)
            span = window(now - timedelta(minutes=5), now + timedelta(minutes=1))
            response = await client.get(NAMESPACES, params=span, headers=headers)
            evicted = await values(
                client, headers, metric="cache_evictions", namespace="shared-a", step=360, **span
            )
        assert response.status_code == 200, response.text
        items: dict[str, Any] = {item["namespace"]: item for item in response.json()["items"]}
        # Busiest first: b had three lookups, a none (only stores).
        assert [item["namespace"] for item in response.json()["items"]] == ["shared-b", "shared-a"]
        assert items["shared-b"] == {
            "namespace": "shared-b",
            "hits": 2,
            "misses": 1,
            "hit_rate": 2 / 3,
            "evictions": 1,
            "entries": 0,
            "evictions_here": 1,
        }
        assert items["shared-a"]["entries"] == L1_BOUND
        assert items["shared-a"]["evictions_here"] == 2
        assert items["shared-a"]["evictions"] == 2
        assert items["shared-a"]["hit_rate"] is None
        assert sum(evicted) == 2

    async def test_a_namespace_held_here_but_not_looked_up_in_the_range_is_listed(
        self, make_settings: Callable[..., Settings]
    ) -> None:
        app = traffic_app(make_settings())
        async with running(app) as client:
            platform = app.state.platform
            await platform.cache.store_json("held-only", TENANT, ["k"], "1")
            headers = await operator_headers(platform)
            # Nothing flushed: the rollups hold no row of it yet.
            response = await client.get(NAMESPACES, headers=headers)
            limited = await client.get(NAMESPACES, params={"limit": 1}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == [
            {
                "namespace": "held-only",
                "hits": 0,
                "misses": 0,
                "hit_rate": None,
                "evictions": 0,
                "entries": 1,
                "evictions_here": 0,
            }
        ]
        assert len(limited.json()["items"]) == 1
