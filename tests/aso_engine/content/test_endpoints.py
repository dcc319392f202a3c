"""The content API end to end, on SQLite and PostgreSQL: bounds, isolation, edits."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.aso_engine.content.conftest import CONTENT, Api, moment
from tests.corpus import SQL_INJECTIONS
from tests.helpers import auth, issue_key
from xynergy.aso_engine.config import AsoSettings

FIELDS = {
    "id",
    "title",
    "body",
    "status",
    "priority",
    "target_keywords",
    "author",
    "created_at",
    "updated_at",
}
BOUNDS = AsoSettings()
MISSING_ID = "0" * 32


def _over(limit: int) -> int:
    return limit + 1


# Each case: the field, a value at its limit, a value just over it.
AT_AND_OVER: list[tuple[str, Any, Any]] = [
    ("title", "t" * BOUNDS.content_title_max_chars, "t" * _over(BOUNDS.content_title_max_chars)),
    ("body", "b" * BOUNDS.content_body_max_chars, "b" * _over(BOUNDS.content_body_max_chars)),
    (
        "target_keywords",
        [f"kw {n}" for n in range(BOUNDS.content_keywords_max)],
        [f"kw {n}" for n in range(_over(BOUNDS.content_keywords_max))],
    ),
    (
        "target_keywords",
        ["k" * BOUNDS.keyword_phrase_max_chars],
        ["k" * _over(BOUNDS.keyword_phrase_max_chars)],
    ),
    ("author", "a" * 200, "a" * 201),
]
BOUND_IDS = ["title", "body", "keyword-count", "keyword-length", "author"]


class TestCreateContent:
    async def test_creates_and_answers_the_stored_piece(self, api: Api) -> None:
        before = datetime.now(UTC)
        response = await api.client.post(
            CONTENT,
            json={
                "title": "  Launch notes  ",
                "body": "<p>Hello <b>world</b></p>",
                "status": "review",
                "priority": "high",
                "target_keywords": ["Photo Editor", "photo   editor", "ＡＩ Art"],
                "author": "ann",
            },
            headers=api.headers,
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert set(body) == FIELDS
        assert re.fullmatch(r"[0-9a-f]{32}", body["id"])
        assert body["created_at"] == body["updated_at"]
        assert before <= moment(body["created_at"]) <= datetime.now(UTC)
        assert {k: v for k, v in body.items() if k not in {"id", "created_at", "updated_at"}} == {
            "title": "Launch notes",
            "body": "<p>Hello <b>world</b></p>",
            "status": "review",
            "priority": "high",
            "target_keywords": ["photo editor", "ai art"],
            "author": "ann",
        }
        stored = await api.stored(body["id"])
        assert stored is not None
        assert (stored.tenant_id, stored.priority_rank) == (api.tenant_id, 2)
        assert await api.keyword_rows(body["id"]) == [
            ("ai art", api.tenant_id),
            ("photo editor", api.tenant_id),
        ]

    async def test_defaults(self, api: Api) -> None:
        body = await api.create(title="Only a title")
        assert (body["body"], body["status"], body["priority"], body["target_keywords"]) == (
            "",
            "draft",
            "normal",
            [],
        )
        stored = await api.stored(body["id"])
        assert stored is not None
        assert stored.priority_rank == 1

    async def test_body_is_sanitised_and_allowed_markup_kept(self, api: Api) -> None:
        body = await api.create(
            body='<p>Hi <a href="https://example.com" onclick="steal()">link</a>'
            "<script>alert(1)</script><em>end</em></p>"
        )
        assert "<script" not in body["body"]
        assert "alert(1)" not in body["body"]
        assert "onclick" not in body["body"]
        assert body["body"].startswith('<p>Hi <a href="https://example.com"')
        assert "<em>end</em></p>" in body["body"]
        stored = await api.stored(body["id"])
        assert stored is not None
        assert stored.body == body["body"]

    @pytest.mark.parametrize(("field", "at_limit", "_over_limit"), AT_AND_OVER, ids=BOUND_IDS)
    async def test_each_bound_is_accepted_at_its_limit(
        self, api: Api, field: str, at_limit: Any, _over_limit: Any
    ) -> None:
        body = await api.create(**{field: at_limit})
        assert body[field] == at_limit

    @pytest.mark.parametrize(("field", "_at_limit", "over_limit"), AT_AND_OVER, ids=BOUND_IDS)
    async def test_each_bound_is_refused_over_its_limit_and_nothing_written(
        self, api: Api, field: str, _at_limit: Any, over_limit: Any
    ) -> None:
        response = await api.client.post(
            CONTENT, json={"title": "t", "author": "a", field: over_limit}, headers=api.headers
        )
        assert response.status_code == 422, response.text
        error = response.json()
        assert set(error) == {"error", "detail", "request_id"}
        assert error["error"] == "validation_failed"
        assert field in error["detail"]
        assert await api.rows() == 0

    @pytest.mark.parametrize(
        "changes",
        [
            {"title": "   "},
            {"status": "deleted"},
            {"priority": "critical"},
            {"target_keywords": ["  "]},
            {"author": ""},
            {"title": None},
        ],
        ids=["blank-title", "status", "priority", "blank-keyword", "empty-author", "null"],
    )
    async def test_invalid_values_are_refused(self, api: Api, changes: dict[str, Any]) -> None:
        response = await api.client.post(
            CONTENT, json={"title": "t", "author": "a", **changes}, headers=api.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        assert await api.rows() == 0

    async def test_unknown_field_is_refused(self, api: Api) -> None:
        response = await api.client.post(
            CONTENT,
            json={"title": "t", "author": "a", "tenant_id": api.other_tenant_id},
            headers=api.headers,
        )
        assert response.status_code == 422, response.text
        assert "tenant_id" in response.json()["detail"]
        assert await api.rows() == 0

    async def test_read_only_key_is_forbidden(self, api: Api) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["content:read"])
        response = await api.client.post(
            CONTENT, json={"title": "t", "author": "a"}, headers=auth(issued.secret)
        )
        assert response.status_code == 403, response.text
        assert await api.rows() == 0

    async def test_no_key_is_unauthorised(self, api: Api) -> None:
        response = await api.client.post(CONTENT, json={"title": "t", "author": "a"})
        assert response.status_code == 401, response.text
        assert await api.rows() == 0


class TestGetContent:
    async def test_answers_the_piece(self, api: Api) -> None:
        created = await api.create(target_keywords=["x"])
        response = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert response.status_code == 200, response.text
        assert response.json() == created

    async def test_another_tenants_piece_is_not_found(self, api: Api) -> None:
        created = await api.create()
        response = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.other)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"

    async def test_unknown_id_is_not_found(self, api: Api) -> None:
        response = await api.client.get(f"{CONTENT}/{MISSING_ID}", headers=api.headers)
        assert response.status_code == 404, response.text

    @pytest.mark.parametrize("content_id", ["ABC", "0" * 31, "g" * 32, "0" * 33, "1 OR 1=1"])
    async def test_malformed_id_is_refused(self, api: Api, content_id: str) -> None:
        response = await api.client.get(f"{CONTENT}/{content_id}", headers=api.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"

    async def test_key_without_content_scope_is_forbidden(self, api: Api) -> None:
        created = await api.create()
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["keywords:read"])
        response = await api.client.get(f"{CONTENT}/{created['id']}", headers=auth(issued.secret))
        assert response.status_code == 403, response.text


class TestUpdateContent:
    async def test_changes_only_the_fields_sent(self, api: Api) -> None:
        created = await api.create(body="<p>b</p>", target_keywords=["old"])
        response = await api.client.patch(
            f"{CONTENT}/{created['id']}",
            json={"title": "New", "priority": "urgent"},
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert moment(body["updated_at"]) > moment(created["updated_at"])
        unchanged = {k: created[k] for k in FIELDS - {"title", "priority", "updated_at"}}
        assert body == {
            **unchanged,
            "title": "New",
            "priority": "urgent",
            "updated_at": body["updated_at"],
        }
        stored = await api.stored(created["id"])
        assert stored is not None
        assert (stored.title, stored.priority_rank) == ("New", 3)
        assert await api.keyword_rows(created["id"]) == [("old", api.tenant_id)]

    async def test_keywords_are_replaced_normalised(self, api: Api) -> None:
        created = await api.create(target_keywords=["old"])
        response = await api.client.patch(
            f"{CONTENT}/{created['id']}",
            json={
                "target_keywords": ["New  One", "new one", "Two"],
                "body": "<script>x</script>ok",
            },
            headers=api.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["target_keywords"] == ["new one", "two"]
        assert response.json()["body"] == "ok"
        assert await api.keyword_rows(created["id"]) == [
            ("new one", api.tenant_id),
            ("two", api.tenant_id),
        ]
        assert await api.count(keyword="old") == 0
        assert await api.count(keyword="NEW one") == 1

    @pytest.mark.parametrize(("field", "_at_limit", "over_limit"), AT_AND_OVER, ids=BOUND_IDS)
    async def test_over_a_bound_is_refused_and_nothing_changes(
        self, api: Api, field: str, _at_limit: Any, over_limit: Any
    ) -> None:
        created = await api.create(target_keywords=["kept"])
        response = await api.client.patch(
            f"{CONTENT}/{created['id']}", json={field: over_limit}, headers=api.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        current = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert current.json() == created
        assert await api.keyword_rows(created["id"]) == [("kept", api.tenant_id)]

    @pytest.mark.parametrize(
        "changes",
        [{}, {"title": None}, {"status": None}, {"colour": "red"}, {"status": "gone"}],
        ids=["empty", "null-title", "null-status", "unknown-field", "bad-status"],
    )
    async def test_invalid_changes_are_refused(self, api: Api, changes: dict[str, Any]) -> None:
        created = await api.create()
        response = await api.client.patch(
            f"{CONTENT}/{created['id']}", json=changes, headers=api.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"
        current = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert current.json() == created

    async def test_another_tenants_piece_is_not_found_and_unchanged(self, api: Api) -> None:
        created = await api.create()
        response = await api.client.patch(
            f"{CONTENT}/{created['id']}", json={"title": "hijacked"}, headers=api.other
        )
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
        current = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert current.json() == created

    async def test_unknown_id_is_not_found(self, api: Api) -> None:
        response = await api.client.patch(
            f"{CONTENT}/{MISSING_ID}", json={"title": "x"}, headers=api.headers
        )
        assert response.status_code == 404, response.text


class TestDeleteContent:
    async def test_deletes_the_piece_and_its_keywords(self, api: Api) -> None:
        created = await api.create(target_keywords=["a", "b"])
        response = await api.client.delete(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert await api.rows(id=created["id"]) == 0
        assert await api.keyword_rows(created["id"]) == []
        again = await api.client.get(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert again.status_code == 404

    async def test_deleting_twice_is_not_found(self, api: Api) -> None:
        created = await api.create()
        await api.client.delete(f"{CONTENT}/{created['id']}", headers=api.headers)
        response = await api.client.delete(f"{CONTENT}/{created['id']}", headers=api.headers)
        assert response.status_code == 404, response.text

    async def test_another_tenants_piece_is_not_found_and_kept(self, api: Api) -> None:
        created = await api.create(target_keywords=["a"])
        response = await api.client.delete(f"{CONTENT}/{created['id']}", headers=api.other)
        assert response.status_code == 404, response.text
        assert await api.rows(id=created["id"]) == 1
        assert await api.keyword_rows(created["id"]) == [("a", api.tenant_id)]

    async def test_read_only_key_is_forbidden(self, api: Api) -> None:
        created = await api.create()
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["content:read"])
        response = await api.client.delete(
            f"{CONTENT}/{created['id']}", headers=auth(issued.secret)
        )
        assert response.status_code == 403, response.text
        assert await api.rows(id=created["id"]) == 1


def _newest_first(items: list[dict[str, Any]]) -> list[str]:
    return [
        i["id"]
        for i in sorted(items, key=lambda i: (moment(i["created_at"]), i["id"]), reverse=True)
    ]


def _priority_first(items: list[dict[str, Any]]) -> list[str]:
    ranks = {"low": 0, "normal": 1, "high": 2, "urgent": 3}
    ordered = sorted(
        items,
        key=lambda i: (ranks[i["priority"]], moment(i["created_at"]), i["id"]),
        reverse=True,
    )
    return [i["id"] for i in ordered]


PRIORITIES = ["low", "urgent", "normal", "high", "urgent", "low", "normal"]
STATUSES = ["draft", "published", "draft", "review", "published", "archived", "draft"]


async def _seven(api: Api) -> list[dict[str, Any]]:
    return [
        await api.create(
            title=f"piece {n}",
            priority=PRIORITIES[n],
            status=STATUSES[n],
            target_keywords=["shared", f"only {n}"] if n % 2 else [f"only {n}"],
        )
        for n in range(7)
    ]


class TestListContent:
    async def test_pages_by_created_return_every_row_once_newest_first(self, api: Api) -> None:
        created = await _seven(api)
        items = await api.list_all()
        assert [i["id"] for i in items] == _newest_first(created)
        assert [i["id"] for i in items] == [c["id"] for c in reversed(created)]
        assert items == list(reversed(created))

    async def test_pages_by_priority_return_every_row_once_highest_first(self, api: Api) -> None:
        created = await _seven(api)
        items = await api.list_all(sort="priority")
        assert [i["id"] for i in items] == _priority_first(created)
        assert len({i["id"] for i in items}) == 7

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"status": "draft"},
            {"priority": "urgent"},
            {"keyword": "shared"},
            {"keyword": "  SHARED "},
            {"status": "published", "priority": "urgent"},
            {"status": "draft", "keyword": "shared"},
            {"priority": "low", "keyword": "only 5"},
            {"status": "scheduled"},
        ],
    )
    @pytest.mark.parametrize("sort", ["created", "priority"])
    async def test_filters_and_counts_agree(
        self, api: Api, params: dict[str, Any], sort: str
    ) -> None:
        created = await _seven(api)
        keyword = " ".join(params.get("keyword", "").lower().split())
        expected = [
            c
            for c in created
            if c["status"] == params.get("status", c["status"])
            and c["priority"] == params.get("priority", c["priority"])
            and (not keyword or keyword in c["target_keywords"])
        ]
        items = await api.list_all(sort=sort, **params)
        order = _priority_first if sort == "priority" else _newest_first
        assert [i["id"] for i in items] == order(expected)
        assert await api.count(**params) == len(expected)

    async def test_updated_since(self, api: Api) -> None:
        created = await _seven(api)
        touched = await api.client.patch(
            f"{CONTENT}/{created[2]['id']}", json={"status": "scheduled"}, headers=api.headers
        )
        since = touched.json()["updated_at"]
        items = await api.list_all(updated_since=since)
        assert [i["id"] for i in items] == [created[2]["id"]]
        assert await api.count(updated_since=since) == 1
        earlier = (moment(created[0]["created_at"]) - timedelta(seconds=1)).isoformat()
        assert await api.count(updated_since=earlier) == 7
        later = (moment(since) + timedelta(hours=1)).isoformat()
        assert await api.count(updated_since=later) == 0

    @pytest.mark.parametrize(
        "since",
        ["2026-01-01T00:00:00", "0001-01-01T00:00:00+14:00", "yesterday"],
        ids=["naive", "out-of-range", "text"],
    )
    @pytest.mark.parametrize("path", [CONTENT, CONTENT + "/count"], ids=["list", "count"])
    async def test_unusable_updated_since_is_refused(self, api: Api, path: str, since: str) -> None:
        response = await api.client.get(path, params={"updated_since": since}, headers=api.headers)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_failed"

    async def test_a_keyword_that_nfkc_lengthens_past_the_cap_matches_nothing(
        self, api: Api
    ) -> None:
        await api.create(target_keywords=["x"])
        ligatures = "\ufb03" * 1000  # each one normalises to "ffi"
        assert await api.count(keyword=ligatures) == 0
        assert await api.list_all(keyword=ligatures) == []

    async def test_other_tenants_rows_are_never_listed_or_counted(self, api: Api) -> None:
        mine = await api.create(target_keywords=["shared"], status="published")
        await api.create(headers=api.other, target_keywords=["shared"], status="published")
        cases: list[dict[str, Any]] = [{}, {"keyword": "shared"}, {"status": "published"}]
        for params in cases:
            assert [i["id"] for i in await api.list_all(**params)] == [mine["id"]]
            assert [i["id"] for i in await api.list_all(sort="priority", **params)] == [mine["id"]]
            assert await api.count(**params) == 1
        assert await api.rows() == 2

    async def test_limit_above_the_maximum_is_refused(self, api: Api) -> None:
        maximum = api.platform.settings.page_size_max
        response = await api.client.get(CONTENT, params={"limit": maximum + 1}, headers=api.headers)
        assert response.status_code == 422, response.text
        ok = await api.client.get(CONTENT, params={"limit": maximum}, headers=api.headers)
        assert ok.status_code == 200, ok.text

    async def test_a_cursor_of_the_other_sort_is_a_bad_request(self, api: Api) -> None:
        await _seven(api)
        first = await api.client.get(CONTENT, params={"limit": 2}, headers=api.headers)
        cursor = first.json()["next_cursor"]
        response = await api.client.get(
            CONTENT, params={"limit": 2, "cursor": cursor, "sort": "priority"}, headers=api.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"

    @pytest.mark.parametrize(
        "raw",
        [
            '[true,"2026-01-01T00:00:00+00:00","ab"]',
            '["2","2026-01-01T00:00:00+00:00","ab"]',
            '[2,"2026-01-01T00:00:00","ab"]',
            '[2,"0001-01-01T00:00:00+14:00","ab"]',
            '[2,"2026-01-01T00:00:00+00:00"]',
            '{"rank":2}',
        ],
        ids=["bool-rank", "text-rank", "naive-time", "out-of-range", "short", "object"],
    )
    async def test_a_forged_priority_cursor_is_a_bad_request(self, api: Api, raw: str) -> None:
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        response = await api.client.get(
            CONTENT, params={"cursor": cursor, "sort": "priority"}, headers=api.headers
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"

    async def test_key_without_read_scope_is_forbidden(self, api: Api) -> None:
        _, issued = await issue_key(api.platform, tenant="acme", scopes=["content:write"])
        response = await api.client.get(CONTENT, headers=auth(issued.secret))
        assert response.status_code == 403, response.text


INJECTIONS = SQL_INJECTIONS
FILTERS = ["status", "priority", "keyword", "updated_since", "sort", "cursor"]


class TestInjectionIsPlainData:
    """Every filter of the list and the count treats SQL as a plain value.

    Free text (keyword) matches nothing; enumerated and typed filters refuse the
    value with a 4xx. Either way no row is exposed and the table is intact.
    """

    @pytest.mark.parametrize("payload", INJECTIONS)
    @pytest.mark.parametrize("name", FILTERS)
    @pytest.mark.parametrize("path", [CONTENT, CONTENT + "/count"], ids=["list", "count"])
    async def test_payload_is_a_plain_value(
        self, api: Api, path: str, name: str, payload: str
    ) -> None:
        await api.create(target_keywords=["shared"])
        await api.create(headers=api.other)
        response = await api.client.get(path, params={name: payload}, headers=api.headers)
        if name == "keyword":
            assert response.status_code == 200, response.text
            assert response.json() in ({"items": [], "next_cursor": None}, {"count": 0})
        elif name in {"sort", "cursor"} and path.endswith("/count"):
            # A count has no order and no pages: these parameters are not its own.
            assert response.status_code == 200, response.text
            assert response.json() == {"count": 1}
        else:
            assert response.status_code in (400, 422), response.text
            assert set(response.json()) == {"error", "detail", "request_id"}
        assert await api.rows() == 2
        assert await api.count() == 1
