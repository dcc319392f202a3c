"""Messages: JSON and SSE replies, persistence before and after the model call, bounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tests.ai_assistant.harness import CONVERSATIONS, SEND, AssistantApi, assistant_api
from tests.ai_routing.fakes import FakeOpenAI, expected_answer
from tests.helpers import TEST_BASE_URL
from xynergy.platform.config import Settings
from xynergy.platform.service_streams import asgi_stream


def events(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body (``[DONE]`` kept as the string)."""
    found: list[Any] = []
    for block in text.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data = line[6:]
                found.append(data if data == "[DONE]" else json.loads(data))
    return found


class TestJsonReply:
    async def test_new_conversation_and_stored_turn(self, api: AssistantApi) -> None:
        response = await api.send("Which keywords matter?")
        assert response.status_code == 200, response.text
        turn = response.json()
        assert turn["user_message"]["content"] == "Which keywords matter?"
        assert turn["reply"]["role"] == "assistant"
        assert turn["reply"]["content"]
        assert turn["reply"]["provider"] == "offline"
        assert set(turn["usage"]) == {"input_tokens", "output_tokens", "cost_usd"}
        detail = await api.client.get(
            f"{CONVERSATIONS}/{turn['conversation_id']}", headers=api.headers
        )
        assert [m["role"] for m in detail.json()["messages"]] == ["assistant", "user"]

    async def test_continues_a_named_conversation(self, api: AssistantApi) -> None:
        first = (await api.send("one")).json()
        second = await api.send("two", conversation_id=None, **{})
        assert second.json()["conversation_id"] != first["conversation_id"]
        body = {"message": "three", "conversation_id": first["conversation_id"]}
        third = await api.client.post(SEND, json=body, headers=api.headers)
        assert third.json()["conversation_id"] == first["conversation_id"]
        assert third.json()["user_message"]["seq"] > first["reply"]["seq"]

    async def test_needs_ai_generate_too(self, api: AssistantApi) -> None:
        from tests.helpers import auth, issue_key

        _, key = await issue_key(api.platform, tenant="acme", scopes=("assistant:chat",))
        response = await api.send("hi", headers=auth(key.secret))
        assert response.status_code == 403
        assert await api.counts() == (0, 0)


class TestStreamedReply:
    async def test_chunks_then_the_stored_turn(
        self, upstream_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = upstream_api
        response = await api.send("tell me about yoga mats", stream=True)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/event-stream")
        found = events(response.text)
        assert found[-1] == "[DONE]"
        chunks = [e for e in found[:-2] if e["object"] == "chat.completion.chunk"]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        assert text == expected_answer("tell me about yoga mats")
        assert len(chunks) > 2  # the fake streams several deltas
        final = found[-2]
        assert final["object"] == "assistant.turn"
        assert final["reply"]["content"] == text
        assert float(final["usage"]["cost_usd"]) >= 0
        assert final["usage"]["output_tokens"] > 0
        assert upstream.requests[-1]["stream"] is True

    async def test_model_refusal_is_an_error_event_and_a_failed_reply(
        self, upstream_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = upstream_api
        response = await api.send("hi", stream=True, model="no-such-model")
        found = events(response.text)
        assert "error" in found[-1]
        assert found[-1]["error"] == "not_found"
        _, messages = await api.counts()
        assert messages == 2  # the user message and the failed reply saying why


class TestDisconnect:
    async def test_reply_is_stored_after_the_client_leaves(
        self, make_settings: Callable[..., Settings], fake_catalogue: None, upstream: FakeOpenAI
    ) -> None:
        from tests.helpers import auth, issue_key
        from xynergy.server import build_all_in_one

        app = build_all_in_one(make_settings())
        async with app.router.lifespan_context(app):
            _, key = await issue_key(app.state.platform, scopes=("assistant:chat", "ai:generate"))
            upstream.chunk_delay_seconds = 0.05
            headers = auth(key.secret) | {"content-type": "application/json"}
            body = json.dumps({"message": "a long answer please", "stream": True}).encode()
            async with asgi_stream(
                app,
                base_url=TEST_BASE_URL,
                method="POST",
                path=SEND,
                headers=headers,
                body=body,
                read_timeout=10,
            ) as opened:
                assert opened.status == 200
                first = await anext(opened.chunks)
                conversation_id = events(first.decode())[0]["conversation_id"]
            # The client is gone; the reply goes on and is stored.
            for _ in range(200):
                detail = await _detail(app, conversation_id, headers)
                if len(detail["messages"]) == 2:
                    break
                await asyncio.sleep(0.05)
            roles = [m["role"] for m in detail["messages"]]
            assert roles == ["assistant", "user"]
            assert detail["messages"][0]["content"] == expected_answer("a long answer please")
            assert detail["messages"][0]["status"] == "complete"
        # The app stopped: no reply task outlives it.
        names = [t.get_name() for t in asyncio.all_tasks()]
        assert not [n for n in names if n.startswith(("assistant-turn:", "service-stream"))]


async def _detail(app: Any, conversation_id: str, headers: dict[str, str]) -> Any:
    from tests.helpers import client_for

    async with client_for(app) as client:
        response = await client.get(f"{CONVERSATIONS}/{conversation_id}", headers=headers)
        return response.json()


class TestBounds:
    @pytest.fixture
    async def bounded(
        self, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[AssistantApi]:
        monkeypatch.setenv("XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS", "50")
        monkeypatch.setenv("XYNERGY_ASSISTANT_MESSAGES_PER_CONVERSATION_MAX", "4")
        monkeypatch.setenv("XYNERGY_ASSISTANT_CONVERSATIONS_PER_KEY_MAX", "2")
        async with assistant_api(make_settings()) as running_api:
            yield running_api

    async def test_message_length(self, bounded: AssistantApi) -> None:
        assert (await bounded.send("x" * 50)).status_code == 200
        before = await bounded.counts()
        response = await bounded.send("x" * 51)
        assert response.status_code == 422
        assert response.json()["error"] == "validation_failed"
        assert await bounded.counts() == before

    async def test_messages_per_conversation(self, bounded: AssistantApi) -> None:
        conversation = await bounded.create()
        for text in ("one", "two"):
            assert (await bounded.send(text, conversation["id"])).status_code == 200
        before = await bounded.counts()
        assert before == (1, 4)  # at the bound
        response = await bounded.send("three", conversation["id"])
        assert response.status_code == 409
        streamed = await bounded.send("three", conversation["id"], stream=True)
        assert streamed.status_code == 409
        assert await bounded.counts() == before

    async def test_conversations_per_key(self, bounded: AssistantApi) -> None:
        await bounded.create()
        assert (await bounded.send("second, new")).status_code == 200  # at the bound
        before = await bounded.counts()
        assert before[0] == 2
        assert (await bounded.send("third, new")).status_code == 409
        response = await bounded.client.post(CONVERSATIONS, json={}, headers=bounded.headers)
        assert response.status_code == 409
        assert await bounded.counts() == before
        # Another key has its own allowance.
        assert (await bounded.send("theirs", headers=bounded.same_tenant)).status_code == 200

    async def test_empty_message(self, bounded: AssistantApi) -> None:
        assert (await bounded.send("   ")).status_code == 422
        assert (await bounded.send("")).status_code == 422
        assert await bounded.counts() == (0, 0)


class TestRepliesInFlight:
    async def test_over_the_bound_answers_503_and_writes_nothing(
        self,
        make_settings: Callable[..., Settings],
        fake_catalogue: None,
        upstream: FakeOpenAI,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("XYNERGY_ASSISTANT_TURNS_IN_FLIGHT_MAX", "1")
        async with assistant_api(make_settings()) as api:
            upstream.gate = asyncio.Event()
            first = asyncio.create_task(api.send("first"))
            await upstream.wait_for_calls(1)
            before = await api.counts()
            refused = await api.send("second")
            assert refused.status_code == 503
            assert await api.counts() == before
            upstream.gate.set()
            assert (await first).status_code == 200
            assert (await api.send("third")).status_code == 200
