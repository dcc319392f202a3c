"""The keywords API, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.aso_engine.keywords.conftest import KEYWORDS, Api
from tests.corpus import SQL_INJECTIONS
from tests.helpers import auth, issue_key
from xynergy.aso_engine.config import AsoSettings

KEYWORD_FIELDS = {
    "id",
    "phrase",
    "locale",
    "tags",
    "target_url",
    "intent",
    "created_at",
    "updated_at",
}
INJECTIONS = SQL_INJECTIONS
MISSING_ID = "0" * 32


class TestCreateKeyword:
    async def test_creates_a_normalised_keyword(self, api: Api) -> None:
        response = await api.client.post(
            KEYWORDS,
            json={
                "phrase": "  Ｒｕｎｎｉｎｇ \t SHOES  ",
                "locale": "en-us",
                "tags": ["Sport", " sport ", "Trail  Run"],
                "target_url": "https://example.com/shoes",
                "intent": "commercial",
            },
            headers=api.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == KEYWORD_FIELDS
        assert body["phrase"] == "running shoes"
        assert body["locale"] == "en-US"
        assert body["tags"] == ["sport", "trail run"]
        assert body["intent"] == "commercial"
        assert await api.stored() == 1

    async def test_same_phrase_and_locale_conflicts(self, api: Api) -> None:
        await api.create(phrase="running shoes", locale="en-US")
        response = await api.client.post(
            KEYWORDS, json={"phrase": "RUNNING  shoes", "locale": "EN-us"}, headers=api.headers
        )
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "conflict"
        assert await api.stored() == 1

    async def test_same_phrase_in_another_locale_or_tenant_is_fine(self, api: Api) -> None:
        await api.create(phrase="shoes", locale="en-US")
        await api.create(phrase="shoes", locale="en-GB")
        await api.create(api.other, phrase="shoes", locale="en-US")
        assert await api.stored() == 2

    async def test_phrase_at_the_limit_is_accepted(self, api: Api) -> None:
        limit = AsoSettings().keyword_phrase_max_chars
        created = await api.create(phrase="x" * limit)
        assert len(created["phrase"]) == limit

    @pytest.mark.parametrize(
        "fields",
        [
            {"phrase": "x" * (AsoSettings().keyword_phrase_max_chars + 1)},
            {"phrase": "   "},
            {"phrase": "a\x00b"},
            {"locale": "english"},
            {"locale": "en-US-extra"},
            {"tags": [f"t{i}" for i in range(AsoSettings().keyword_tags_max + 1)]},
            {"tags": ["x" * 65]},
            {"target_url": "javascript:alert(1)"},
            {"target_url": "ftp://example.com/"},
            {"target_url": "https://"},
            {"target_url": "https://example.com/" + "a" * AsoSettings().url_max_chars},
            {"intent": "curious"},
            {"volume": 10},
            {"phrase": 5},
        ],
        ids=[
            "phrase-too-long",
            "phrase-blank",
            "phrase-nul",
            "locale-word",
            "locale-extra",
            "too-many-tags",
            "tag-too-long",
            "url-javascript",
            "url-ftp",
            "url-no-host",
            "url-too-long",
            "intent-unknown",
            "unknown-field",
            "phrase-not-string",
        ],
    )
    async def test_invalid_input_is_422_and_nothing_written(
        self, api: Api, fields: dict[str, object]
    ) -> None:
        body = {"phrase": "running shoes", "locale": "en-US", **fields}
        response = await api.client.post(KEYWORDS, json=body, headers=api.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert await api.stored() == 0

    async def test_tags_at_the_limit_are_accepted(self, api: Api) -> None:
        limit = AsoSettings().keyword_tags_max
        created = await api.create(tags=[f"t{i}" for i in range(limit)])
        assert len(created["tags"]) == limit

    async def test_phrase_bound_comes_from_aso_settings(self, api: Api) -> None:
        api.app.state.aso = AsoSettings(keyword_phrase_max_chars=5)
        response = await api.client.post(
            KEYWORDS, json={"phrase": "sixsix", "locale": "en"}, headers=api.headers
        )
        assert response.status_code == 422, response.text
        await api.create(phrase="five5", locale="en")

    async def test_read_only_key_is_forbidden(self, api: Api) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["keywords:read"])
        response = await api.client.post(
            KEYWORDS, json={"phrase": "x", "locale": "en"}, headers=auth(issued.secret)
        )
        assert response.status_code == 403, response.text
        assert await api.stored() == 0


class TestGetKeyword:
    async def test_returns_the_keyword(self, api: Api) -> None:
        created = await api.create()
        response = await api.client.get(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert response.status_code == 200, response.text
        assert response.json() == created

    async def test_another_tenants_keyword_is_404(self, api: Api) -> None:
        created = await api.create(api.other)
        response = await api.client.get(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"

    @pytest.mark.parametrize("keyword_id", [MISSING_ID, "not-hex", "a" * 33])
    async def test_unknown_or_malformed_id(self, api: Api, keyword_id: str) -> None:
        response = await api.client.get(f"{KEYWORDS}/{keyword_id}", headers=api.headers)
        assert response.status_code in (404, 422), response.text

    async def test_without_key_is_401(self, api: Api) -> None:
        response = await api.client.get(f"{KEYWORDS}/{MISSING_ID}")
        assert response.status_code == 401


class TestDeleteKeyword:
    async def test_deletes_the_keyword(self, api: Api) -> None:
        created = await api.create()
        response = await api.client.delete(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert response.status_code == 204, response.text
        assert await api.stored() == 0
        again = await api.client.delete(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert again.status_code == 404

    async def test_another_tenants_keyword_is_404_and_kept(self, api: Api) -> None:
        created = await api.create(api.other)
        response = await api.client.delete(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert response.status_code == 404, response.text
        assert await api.stored(api.other_tenant_id) == 1


class TestListKeywords:
    async def test_pages_return_every_keyword_once_newest_first(self, api: Api) -> None:
        created = [(await api.create(phrase=f"kw {index}"))["id"] for index in range(7)]
        await api.create(api.other, phrase="not mine")
        items = await api.list_all()
        assert [item["id"] for item in items] == list(reversed(created))
        assert all(set(item) == KEYWORD_FIELDS for item in items)

    async def test_imported_rows_page_exactly_once(self, api: Api) -> None:
        body = "phrase\n" + "".join(f"bulk {index}\n" for index in range(25))
        response = await api.import_file(body.encode(), locale="en-US")
        assert response.status_code == 200, response.text
        items = await api.list_all()
        assert len(items) == 25
        assert len({item["id"] for item in items}) == 25

    async def test_other_tenant_never_sees_my_rows(self, api: Api) -> None:
        await api.create(phrase="secret plan")
        assert await api.list_all(api.other) == []
        assert await api.list_all(api.other, q="secret") == []

    async def test_filters(self, api: Api) -> None:
        await api.create(phrase="red shoes", locale="en-US", tags=["sale"], intent="commercial")
        await api.create(phrase="red hats", locale="en-GB", tags=["new"], intent="informational")
        await api.create(phrase="blue shoes", locale="en-US", tags=["sale", "new"])

        def phrases(items: list[dict[str, str]]) -> set[str]:
            return {item["phrase"] for item in items}

        assert phrases(await api.list_all(locale="en-us")) == {"red shoes", "blue shoes"}
        assert phrases(await api.list_all(tag="SALE")) == {"red shoes", "blue shoes"}
        assert phrases(await api.list_all(tag="new")) == {"red hats", "blue shoes"}
        assert phrases(await api.list_all(intent="commercial")) == {"red shoes"}
        assert phrases(await api.list_all(q="  RED ")) == {"red shoes", "red hats"}
        assert phrases(await api.list_all(q="red", locale="en-GB")) == {"red hats"}

    @pytest.mark.parametrize("payload", INJECTIONS)
    async def test_injection_payloads_are_plain_values(self, api: Api, payload: str) -> None:
        await api.create(phrase="ordinary")
        literal = await api.create(phrase=payload + " literal")
        assert await api.list_all(q=payload) == [literal]
        assert await api.list_all(tag=payload) == []
        response = await api.client.get(KEYWORDS, params={"locale": payload}, headers=api.headers)
        assert response.status_code == 422
        response = await api.client.get(KEYWORDS, params={"intent": payload}, headers=api.headers)
        assert response.status_code == 422
        assert await api.stored() == 2

    async def test_bad_cursor_and_oversized_page(self, api: Api) -> None:
        bad = await api.client.get(KEYWORDS, params={"cursor": "nope"}, headers=api.headers)
        assert bad.status_code == 400
        big = await api.client.get(KEYWORDS, params={"limit": 100_000}, headers=api.headers)
        assert big.status_code == 422

    async def test_overlong_filter_is_422(self, api: Api) -> None:
        response = await api.client.get(KEYWORDS, params={"q": "x" * 1001}, headers=api.headers)
        assert response.status_code == 422


class TestDeleteInvalidatesTrending:
    async def test_deleted_keyword_leaves_the_cached_trending_list(self, api: Api) -> None:
        created = await api.create(phrase="falling star")
        today = date.today()
        observations = [
            {
                "keyword_id": created["id"],
                "engine": "google",
                "locale": "en-US",
                "position": position,
                "observed_on": (today - timedelta(days=days)).isoformat(),
            }
            for days, position in ((3, 9), (1, 2))
        ]
        recorded = await api.client.post(
            "/api/rankings", json={"observations": observations}, headers=api.headers
        )
        assert recorded.status_code in (200, 201), recorded.text

        async def trending_ids() -> list[str]:
            response = await api.client.get(
                f"{KEYWORDS}/trending", params={"window": 7}, headers=api.headers
            )
            assert response.status_code == 200, response.text
            return [item["keyword_id"] for item in response.json()["items"]]

        assert created["id"] in await trending_ids()  # now cached
        deleted = await api.client.delete(f"{KEYWORDS}/{created['id']}", headers=api.headers)
        assert deleted.status_code == 204
        assert created["id"] not in await trending_ids()
