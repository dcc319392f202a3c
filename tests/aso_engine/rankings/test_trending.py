"""Trending keywords: exact movements per window and direction, and their cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.aso_engine.rankings.conftest import TRENDING_TTL, Aso, aso_engine, days_ago, observation
from tests.corpus import SQL_TAUTOLOGY
from tests.helpers import metric_value, scrape
from xynergy.platform.config import Settings

INJECTION = SQL_TAUTOLOGY
PROPAGATION_BOUND_SECONDS = 1.0
HITS = "xynergy_cache_requests_total"


async def _seed(engine: Aso) -> dict[str, str]:
    """Series with known movements (google, en-US unless said otherwise)."""
    ids = {
        name: await engine.add_keyword(engine.acme, name)
        for name in ("improved", "worsened", "unchanged", "entered", "dropped", "old mover")
    }
    series: dict[str, list[tuple[int, int | None]]] = {
        "improved": [(30, 50), (7, 40), (0, 10)],  # 7: +30, 30: +40
        "worsened": [(30, 5), (7, 8), (0, 20)],  # 7: -12, 30: -15
        "unchanged": [(30, 3), (7, 3), (0, 3)],
        "entered": [(30, None), (7, None), (1, 900)],  # 1001 -> 900: +101
        "dropped": [(30, 2), (7, 2), (0, None)],  # 2 -> 1001: -999
        "old mover": [(40, 1), (25, 95), (3, 60)],  # 30: +35; 7: one observation
    }
    batch = [
        observation(ids[name], position, days_ago(day))
        for name, points in series.items()
        for day, position in points
    ]
    batch += [
        observation(ids["improved"], 10, days_ago(7), engine="bing"),
        observation(ids["improved"], 9, days_ago(0), engine="bing"),  # 7 and 30: +1
    ]
    foreign = await engine.add_keyword(engine.globex, "foreign")
    responses = [
        await engine.record(engine.acme, *batch),
        await engine.record(
            engine.globex,
            observation(foreign, None, days_ago(7)),
            observation(foreign, 1000, days_ago(6)),
            observation(foreign, 1),
        ),
    ]
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return ids


async def _trending(
    engine: Aso, /, **params: Any
) -> list[tuple[str, str, int | None, int | None, int]]:
    response = await engine.client.get(
        "/api/keywords/trending", params=params, headers=engine.acme.headers
    )
    assert response.status_code == 200, response.text
    return [
        (i["phrase"], i["engine"], i["start_position"], i["latest_position"], i["change"])
        for i in response.json()["items"]
    ]


class TestTrendingKeywords:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            (
                {"window": 7},
                [
                    ("entered", "google", None, 900, 101),
                    ("improved", "google", 40, 10, 30),
                    ("improved", "bing", 10, 9, 1),
                ],
            ),
            (
                {"window": 7, "direction": "worsened"},
                [("dropped", "google", 2, None, -999), ("worsened", "google", 8, 20, -12)],
            ),
            (
                {"window": 30},
                [
                    ("entered", "google", None, 900, 101),
                    ("improved", "google", 50, 10, 40),
                    ("old mover", "google", 95, 60, 35),
                    ("improved", "bing", 10, 9, 1),
                ],
            ),
            (
                {"window": 30, "direction": "worsened"},
                [("dropped", "google", 2, None, -999), ("worsened", "google", 5, 20, -15)],
            ),
            (
                {"window": 30, "limit": 2},
                [
                    ("entered", "google", None, 900, 101),
                    ("improved", "google", 50, 10, 40),
                ],
            ),
            ({"window": 7, "engine": "bing"}, [("improved", "bing", 10, 9, 1)]),
            ({"window": 7, "locale": "de-DE"}, []),
        ],
        ids=["7-improved", "7-worsened", "30-improved", "30-worsened", "limit", "engine", "locale"],
    )
    async def test_movements_are_exact(
        self, engine: Aso, params: dict[str, Any], expected: list[Any]
    ) -> None:
        await _seed(engine)
        assert await _trending(engine, **params) == expected

    async def test_response_shape(self, engine: Aso) -> None:
        await _seed(engine)
        response = await engine.client.get(
            "/api/keywords/trending", params={"window": 7}, headers=engine.acme.headers
        )
        body = response.json()
        assert (body["window"], body["direction"]) == (7, "improved")
        assert set(body["items"][0]) == {
            "keyword_id",
            "phrase",
            "locale",
            "engine",
            "start_position",
            "latest_position",
            "change",
        }

    @pytest.mark.parametrize(
        "params",
        [{"window": 14}, {}, {"window": 7, "direction": "sideways"}, {"window": 7, "limit": 0}],
        ids=["window-14", "no-window", "direction", "limit-0"],
    )
    async def test_invalid_parameters_are_refused(
        self, engine: Aso, params: dict[str, Any]
    ) -> None:
        response = await engine.client.get(
            "/api/keywords/trending", params=params, headers=engine.acme.headers
        )
        assert response.status_code == 422, response.text

    async def test_another_tenants_data_never_appears(self, engine: Aso) -> None:
        await _seed(engine)
        for window in (7, 30):
            for direction in ("improved", "worsened"):
                found = await _trending(engine, window=window, direction=direction)
                assert "foreign" not in [phrase for phrase, *_ in found]

    @pytest.mark.parametrize("name", ["engine", "locale"])
    async def test_injection_payloads_are_plain_values(self, engine: Aso, name: str) -> None:
        await _seed(engine)
        assert await _trending(engine, window=30, **{name: INJECTION}) == []


class TestTrendingCache:
    async def test_second_call_is_a_hit_and_recording_invalidates(self, engine: Aso) -> None:
        ids = await _seed(engine)
        first = await _trending(engine, window=7)
        hits_before = metric_value(
            scrape(engine.platform), HITS, namespace="trending", result="hit"
        )
        assert await _trending(engine, window=7) == first
        metrics = scrape(engine.platform)
        assert metric_value(metrics, HITS, namespace="trending", result="hit") == hits_before + 1

        recorded = await engine.record(engine.acme, observation(ids["unchanged"], 1))
        assert recorded.status_code == 200, recorded.text
        assert ("unchanged", "google", 3, 1, 2) in await _trending(engine, window=7)

    async def test_warming_computes_the_default_answers_of_active_tenants_ahead(
        self, engine: Aso
    ) -> None:
        await _seed(engine)
        await engine.platform.cache.warm()  # what start-up and the runtime's schedule run
        hits_before = metric_value(
            scrape(engine.platform), HITS, namespace="trending", result="hit"
        )
        for window in (7, 30):
            for direction in ("improved", "worsened"):
                await _trending(engine, window=window, direction=direction)
        hits = metric_value(scrape(engine.platform), HITS, namespace="trending", result="hit")
        assert hits == hits_before + 4

    @pytest.mark.redis
    async def test_a_write_on_one_replica_reaches_the_others_trending_within_a_second(
        self,
        make_settings: Callable[..., Settings],
        database_url: str,
        redis_url: str,
        redis_prefix: str,
    ) -> None:
        settings = make_settings(
            database_url=database_url,
            cache_ttls=TRENDING_TTL,
            redis_url=redis_url,
            redis_key_prefix=redis_prefix,
        )
        async with aso_engine(settings) as writer, aso_engine(settings) as reader:
            ids = await _seed(writer)
            # Same database, so the reader's tenants and keys are the writer's.
            assert (reader.acme.id, reader.globex.id) == (writer.acme.id, writer.globex.id)
            before = await _trending(reader, window=7)
            assert await _trending(reader, window=7) == before
            metrics = scrape(reader.platform)
            assert metric_value(metrics, HITS, namespace="trending", result="hit") >= 1

            recorded = await writer.record(writer.acme, observation(ids["unchanged"], 1))
            assert recorded.status_code == 200, recorded.text
            started = time.monotonic()
            while ("unchanged", "google", 3, 1, 2) not in (
                found := await _trending(reader, window=7)
            ):
                assert time.monotonic() - started < PROPAGATION_BOUND_SECONDS, found
                await asyncio.sleep(0.02)
