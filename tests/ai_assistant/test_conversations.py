"""Conversations: CRUD, pages, search, export, and isolation between keys and tenants."""

from __future__ import annotations

import pytest

from tests.ai_assistant.harness import CONVERSATIONS, AssistantApi


class TestCreate:
    async def test_creates_an_empty_conversation_owned_by_the_key(self, api: AssistantApi) -> None:
        created = await api.create("Launch plan")
        assert created["title"] == "Launch plan"
        assert created["message_count"] == 0
        response = await api.client.get(f"{CONVERSATIONS}/{created['id']}", headers=api.headers)
        assert response.status_code == 200
        assert response.json()["messages"] == []

    async def test_title_is_optional(self, api: AssistantApi) -> None:
        response = await api.client.post(CONVERSATIONS, json={}, headers=api.headers)
        assert response.status_code == 201
        assert response.json()["title"] == ""

    async def test_needs_the_chat_scope(self, api: AssistantApi) -> None:
        from tests.helpers import auth, issue_key

        _, key = await issue_key(api.platform, tenant="acme", scopes=("content:read",))
        response = await api.client.post(CONVERSATIONS, json={}, headers=auth(key.secret))
        assert response.status_code == 403


class TestList:
    async def test_pages_and_searches_by_title(self, api: AssistantApi) -> None:
        for title in ("Alpha plan", "beta", "ALPHA review"):
            await api.create(title)
        await api.create("alpha elsewhere", headers=api.same_tenant)
        seen: list[str] = []
        cursor = None
        for _ in range(5):
            params: dict[str, str | int] = {"limit": 2, "q": "alpha"}
            if cursor:
                params["cursor"] = cursor
            response = await api.client.get(CONVERSATIONS, params=params, headers=api.headers)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [item["title"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["ALPHA review", "Alpha plan"]

    async def test_audit_scope_lists_the_whole_tenant(self, api: AssistantApi) -> None:
        await api.create("mine")
        await api.create("theirs", headers=api.same_tenant)
        await api.create("globex's", headers=api.other)
        response = await api.client.get(CONVERSATIONS, headers=api.reader)
        assert sorted(item["title"] for item in response.json()["items"]) == ["mine", "theirs"]


class TestIsolation:
    @pytest.mark.parametrize("who", ["same_tenant", "other"])
    async def test_another_keys_conversation_is_not_found_everywhere(
        self, api: AssistantApi, who: str
    ) -> None:
        created = await api.create("private")
        await api.send("hello", created["id"])
        headers = getattr(api, who)
        path = f"{CONVERSATIONS}/{created['id']}"
        client = api.client
        statuses = [
            (await client.get(path, headers=headers)).status_code,
            (await client.patch(path, json={"title": "x"}, headers=headers)).status_code,
            (await client.get(path + "/export", headers=headers)).status_code,
            (await client.get(path + "/export?format=markdown", headers=headers)).status_code,
            (await api.send("hi", created["id"], headers=headers)).status_code,
            (await api.send("hi", headers=headers, conversation_id=created["id"])).status_code,
            (
                await api.send("hi", headers=headers, stream=True, conversation_id=created["id"])
            ).status_code,
            (await client.delete(path, headers=headers)).status_code,
        ]
        assert statuses == [404] * len(statuses)
        assert (await client.get(path, headers=api.headers)).json()["message_count"] == 2

    async def test_audit_reads_but_cannot_change(self, api: AssistantApi) -> None:
        created = await api.create("private")
        path = f"{CONVERSATIONS}/{created['id']}"
        assert (await api.client.get(path, headers=api.reader)).status_code == 200
        assert (await api.client.get(path + "/export", headers=api.reader)).status_code == 200
        response = await api.client.patch(path, json={"title": "x"}, headers=api.reader)
        assert response.status_code == 404
        assert (await api.client.delete(path, headers=api.reader)).status_code == 404


class TestUpdate:
    async def test_renames(self, api: AssistantApi) -> None:
        created = await api.create("old")
        path = f"{CONVERSATIONS}/{created['id']}"
        response = await api.client.patch(path, json={"title": "<b>new</b>"}, headers=api.headers)
        assert response.status_code == 200
        assert response.json()["title"] == "new"  # display text: markup removed


class TestDelete:
    async def test_removes_messages_too(self, api: AssistantApi) -> None:
        created = await api.create("to delete")
        await api.send("one", created["id"])
        assert await api.counts() == (1, 2)
        path = f"{CONVERSATIONS}/{created['id']}"
        assert (await api.client.delete(path, headers=api.headers)).status_code == 204
        assert await api.counts() == (0, 0)
        assert (await api.client.get(path, headers=api.headers)).status_code == 404


class TestMessagesPage:
    async def test_messages_come_newest_first_in_cursor_pages(self, api: AssistantApi) -> None:
        created = await api.create()
        for text in ("first", "second"):
            assert (await api.send(text, created["id"])).status_code == 200
        path = f"{CONVERSATIONS}/{created['id']}"
        seen: list[tuple[str, str]] = []
        cursor = None
        for _ in range(5):
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await api.client.get(path, params=params, headers=api.headers)).json()
            seen += [(m["role"], m["content"]) for m in page["messages"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        roles = [role for role, _ in seen]
        assert roles == ["assistant", "user", "assistant", "user"]
        assert seen[1] == ("user", "second")
        assert seen[3] == ("user", "first")


class TestExport:
    async def test_json_and_markdown(self, api: AssistantApi) -> None:
        created = await api.create("Export me")
        await api.send("What is **ASO**?", created["id"])
        path = f"{CONVERSATIONS}/{created['id']}/export"
        document = (await api.client.get(path, headers=api.headers)).json()
        assert [m["role"] for m in document["messages"]] == ["user", "assistant"]
        assert document["conversation"]["title"] == "Export me"
        response = await api.client.get(path, params={"format": "markdown"}, headers=api.headers)
        assert response.headers["content-type"].startswith("text/markdown")
        assert response.text.startswith("# Export me")
        assert "What is **ASO**?" in response.text

    async def test_unknown_format_is_refused(self, api: AssistantApi) -> None:
        created = await api.create()
        path = f"{CONVERSATIONS}/{created['id']}/export"
        response = await api.client.get(path, params={"format": "pdf"}, headers=api.headers)
        assert response.status_code == 422
