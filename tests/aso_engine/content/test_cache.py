"""Cached content lists and counts: write-through in one app and across replicas."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from prometheus_client import generate_latest

from tests.aso_engine.content.conftest import CONTENT, Api, started
from tests.helpers import metric_value, running
from xynergy.aso_engine.app import create_aso_engine_app
from xynergy.platform.config import Settings

PROPAGATION_BOUND_SECONDS = 1.0


def _hits(api: Api) -> float:
    text = generate_latest(api.platform.metrics.registry).decode()
    return metric_value(text, "xynergy_cache_requests_total", namespace="content", result="hit")


async def _ids(api: Api, **params: str) -> list[str]:
    response = await api.client.get(CONTENT, params=params, headers=api.headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


class TestListCache:
    async def test_a_repeated_list_and_count_are_served_from_the_cache(self, api: Api) -> None:
        await api.create()
        first = await _ids(api)
        assert await api.count() == 1
        hits = _hits(api)
        assert await _ids(api) == first
        assert await api.count() == 1
        assert _hits(api) == hits + 2

    async def test_every_write_shows_in_the_next_list_and_count(self, api: Api) -> None:
        first = await api.create(target_keywords=["kw"])
        assert await _ids(api) == [first["id"]]
        assert await _ids(api, sort="priority") == [first["id"]]
        assert await api.count(keyword="kw") == 1

        second = await api.create(priority="urgent", target_keywords=["kw"])
        assert await _ids(api) == [second["id"], first["id"]]
        assert await _ids(api, sort="priority") == [second["id"], first["id"]]
        assert await api.count(keyword="kw") == 2

        patched = await api.client.patch(
            f"{CONTENT}/{second['id']}",
            json={"priority": "low", "target_keywords": []},
            headers=api.headers,
        )
        assert patched.status_code == 200, patched.text
        assert await _ids(api, sort="priority") == [first["id"], second["id"]]
        assert await api.count(keyword="kw") == 1

        deleted = await api.client.delete(f"{CONTENT}/{first['id']}", headers=api.headers)
        assert deleted.status_code == 204
        assert await _ids(api) == [second["id"]]
        assert await api.count(keyword="kw") == 0

    async def test_a_refused_write_leaves_the_cached_list_valid(self, api: Api) -> None:
        created = await api.create()
        assert await _ids(api) == [created["id"]]
        refused = await api.client.post(CONTENT, json={"title": ""}, headers=api.headers)
        assert refused.status_code == 422
        hits = _hits(api)
        assert await _ids(api) == [created["id"]]
        assert _hits(api) == hits + 1

    async def test_tenants_never_share_cached_pages(self, api: Api) -> None:
        mine = await api.create()
        assert await _ids(api) == [mine["id"]]
        response = await api.client.get(CONTENT, headers=api.other)
        assert response.json() == {"items": [], "next_cursor": None}
        assert await api.count(headers=api.other) == 0


@pytest.mark.redis
class TestListCacheAcrossReplicas:
    async def test_a_write_on_one_replica_shows_in_the_others_list_within_a_second(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        settings = make_settings(
            database_url=database_url,
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
            cache_default_ttl_seconds=300,
        )
        app_a, app_b = create_aso_engine_app(settings), create_aso_engine_app(settings)
        async with running(app_a) as client_a, running(app_b) as client_b:
            a = await started(app_a, client_a)
            # The same keys, presented to the other replica.
            b = Api(app_b, client_b, app_b.state.platform, a.tenant_id, a.headers, "", {})
            first = await a.create()
            assert await _ids(b) == [first["id"]]
            assert await b.count() == 1
            hits = _hits(b)
            assert await _ids(b) == [first["id"]]
            assert _hits(b) == hits + 1

            second = await a.create()
            started_at = time.monotonic()
            while (ids := await _ids(b)) != [second["id"], first["id"]]:
                assert time.monotonic() - started_at < PROPAGATION_BOUND_SECONDS, ids
                await asyncio.sleep(0.02)
            while (count := await b.count()) != 2:
                assert time.monotonic() - started_at < PROPAGATION_BOUND_SECONDS, count
                await asyncio.sleep(0.02)
