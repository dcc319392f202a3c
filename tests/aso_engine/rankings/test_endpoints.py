"""Recording ranking observations and reading a keyword's history, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.aso_engine.rankings.conftest import (
    TRENDING_TTL,
    Aso,
    aso_engine,
    days_ago,
    observation,
    today,
)
from tests.corpus import SQL_TAUTOLOGY
from tests.helpers import auth, issue_key
from xynergy.aso_engine.config import AsoSettings
from xynergy.platform.config import Settings

INJECTION = SQL_TAUTOLOGY


class TestRecordRankings:
    async def test_batch_is_recorded_and_the_same_day_again_updates(self, engine: Aso) -> None:
        keyword = await engine.add_keyword(engine.acme, "photo editor")
        first = await engine.record(
            engine.acme,
            observation(keyword, 12, days_ago(1), url="https://example.com/app"),
            observation(keyword, 9),
            observation(keyword, 40, engine="bing"),
        )
        assert first.status_code == 200, first.text
        assert first.json() == {"recorded": 3}

        again = await engine.record(engine.acme, observation(keyword, 4), observation(keyword, 3))
        assert again.status_code == 200, again.text
        # The same key twice in one batch is one row: the last one sent wins.
        assert again.json() == {"recorded": 1}

        assert await engine.positions(keyword) == [
            ("google", "en-US", today() - timedelta(days=1), 12),
            ("bing", "en-US", today(), 40),
            ("google", "en-US", today(), 3),
        ]
        assert await engine.ranking_count(tenant_id=engine.acme.id) == 3

    async def test_not_ranked_is_accepted(self, engine: Aso) -> None:
        keyword = await engine.add_keyword(engine.acme, "photo editor")
        response = await engine.record(engine.acme, observation(keyword, None))
        assert response.status_code == 200, response.text
        assert await engine.positions(keyword) == [("google", "en-US", today(), None)]

    @pytest.mark.parametrize(
        "change",
        [
            {"position": 0},
            {"position": 1001},
            {"observed_on": (today() + timedelta(days=2)).isoformat()},
            {"url": "ftp://example.com/app"},
            {"url": "https://"},
            {"url": "https://exa mple.com"},
            {"url": "https://example.com/" + "a" * 8192},
            {"engine": "Google Play"},
            {"engine": "g" * 33},
            {"locale": "english (us)"},
            {"keyword_id": "not-hex"},
            {"unknown": 1},
        ],
        ids=[
            "position-0",
            "position-1001",
            "future-date",
            "ftp-url",
            "url-without-host",
            "url-with-space",
            "url-too-long",
            "engine-pattern",
            "engine-too-long",
            "locale-pattern",
            "keyword-id",
            "unknown-field",
        ],
    )
    async def test_invalid_observation_is_refused_and_nothing_written(
        self, engine: Aso, change: dict[str, Any]
    ) -> None:
        keyword = await engine.add_keyword(engine.acme, "photo editor")
        bad = {**observation(keyword, 5), **change}
        response = await engine.record(engine.acme, observation(keyword, 5, days_ago(1)), bad)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert await engine.ranking_count() == 0

    async def test_empty_batch_is_refused(self, engine: Aso) -> None:
        response = await engine.record(engine.acme)
        assert response.status_code == 422, response.text

    async def test_batch_over_the_configured_maximum_is_refused(
        self, make_settings: Callable[..., Settings], database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url, cache_ttls=TRENDING_TTL)
        async with aso_engine(settings, AsoSettings(rankings_batch_max=3)) as small:
            keyword = await small.add_keyword(small.acme, "photo editor")
            batch = [observation(keyword, 5, days_ago(day)) for day in range(4)]
            refused = await small.record(small.acme, *batch)
            assert refused.status_code == 422, refused.text
            assert "3" in refused.json()["detail"]
            assert await small.ranking_count() == 0
            accepted = await small.record(small.acme, *batch[:3])
            assert accepted.status_code == 200, accepted.text
            assert await small.ranking_count() == 3

    async def test_another_tenants_keyword_is_not_found_and_nothing_written(
        self, engine: Aso
    ) -> None:
        own = await engine.add_keyword(engine.acme, "photo editor")
        foreign = await engine.add_keyword(engine.globex, "secret launch")
        response = await engine.record(
            engine.acme, observation(own, 5), observation(foreign, 1, engine="apple")
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
        assert foreign not in response.text
        assert "secret" not in response.text
        assert await engine.ranking_count() == 0

    async def test_unknown_keyword_is_not_found(self, engine: Aso) -> None:
        response = await engine.record(engine.acme, observation("0" * 32, 5))
        assert response.status_code == 404, response.text

    async def test_read_only_key_is_forbidden(self, engine: Aso) -> None:
        keyword = await engine.add_keyword(engine.acme, "photo editor")
        _, issued = await issue_key(engine.platform, tenant="acme", scopes=["keywords:read"])
        response = await engine.client.post(
            "/api/rankings",
            json={"observations": [observation(keyword, 5)]},
            headers=auth(issued.secret),
        )
        assert response.status_code == 403, response.text
        assert await engine.ranking_count() == 0

    async def test_without_a_key_is_unauthorized(self, engine: Aso) -> None:
        response = await engine.client.post("/api/rankings", json={"observations": []})
        assert response.status_code == 401, response.text


async def _history(engine: Aso, keyword: str, /, **params: Any) -> Any:
    response = await engine.client.get(
        f"/api/keywords/{keyword}/rankings", params=params, headers=engine.acme.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


class TestKeywordHistory:
    async def _seed(self, engine: Aso) -> str:
        keyword = await engine.add_keyword(engine.acme, "photo editor")
        response = await engine.record(
            engine.acme,
            *(observation(keyword, 10 + day, days_ago(day)) for day in range(4)),
            *(observation(keyword, 20 + day, days_ago(day), engine="bing") for day in range(2)),
            observation(keyword, None, days_ago(0), locale="de-DE"),
        )
        assert response.status_code == 200, response.text
        return keyword

    async def test_newest_first(self, engine: Aso) -> None:
        keyword = await self._seed(engine)
        page = await _history(engine, keyword)
        days = [item["observed_on"] for item in page["items"]]
        assert days == sorted(days, reverse=True)
        assert len(days) == 7
        assert page["next_cursor"] is None
        assert set(page["items"][0]) == {
            "id",
            "keyword_id",
            "engine",
            "locale",
            "position",
            "url",
            "observed_on",
            "created_at",
        }

    async def test_filters(self, engine: Aso) -> None:
        keyword = await self._seed(engine)
        bing = await _history(engine, keyword, engine="bing")
        assert [i["position"] for i in bing["items"]] == [20, 21]
        german = await _history(engine, keyword, locale="de-DE")
        assert [(i["locale"], i["position"]) for i in german["items"]] == [("de-DE", None)]
        recent = await _history(engine, keyword, since=days_ago(1), engine="google", locale="en-US")
        assert [i["position"] for i in recent["items"]] == [10, 11]

    @pytest.mark.parametrize("name", ["engine", "locale"])
    async def test_injection_payloads_are_plain_values(self, engine: Aso, name: str) -> None:
        keyword = await self._seed(engine)
        assert (await _history(engine, keyword, **{name: INJECTION}))["items"] == []

    async def test_page_walk_returns_every_row_once(self, engine: Aso) -> None:
        keyword = await self._seed(engine)
        seen: list[str] = []
        params: dict[str, Any] = {"limit": 2}
        for _ in range(10):
            page = await _history(engine, keyword, **params)
            assert len(page["items"]) <= 2
            seen.extend(item["id"] for item in page["items"])
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert len(seen) == len(set(seen)) == 7
        assert len(seen) == await engine.ranking_count(keyword_id=keyword)

    async def test_another_tenants_keyword_is_not_found(self, engine: Aso) -> None:
        foreign = await engine.add_keyword(engine.globex, "secret launch")
        await engine.record(engine.globex, observation(foreign, 1))
        response = await engine.client.get(
            f"/api/keywords/{foreign}/rankings", headers=engine.acme.headers
        )
        assert response.status_code == 404, response.text
        assert "secret" not in response.text

    async def test_limit_above_the_maximum_is_refused(
        self, engine: Aso, settings: Settings
    ) -> None:
        keyword = await self._seed(engine)
        response = await engine.client.get(
            f"/api/keywords/{keyword}/rankings",
            params={"limit": settings.page_size_max + 1},
            headers=engine.acme.headers,
        )
        assert response.status_code == 422, response.text

    @pytest.mark.parametrize(
        "cursor", ["not-a-cursor!", "WyJ4IiwieSJd"], ids=["garbage", "bad-date"]
    )
    async def test_garbage_cursor_is_a_bad_request(self, engine: Aso, cursor: str) -> None:
        keyword = await self._seed(engine)
        response = await engine.client.get(
            f"/api/keywords/{keyword}/rankings",
            params={"cursor": cursor},
            headers=engine.acme.headers,
        )
        assert response.status_code == 400, response.text
