"""Bounded context: a long conversation never sends more than the budget, and its older
turns are summarised once per overflow, not once per turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update

from tests.ai_assistant.harness import AssistantApi, assistant_api
from tests.ai_assistant.tools_support import ledger_tasks
from tests.ai_routing.fakes import FakeOpenAI
from tests.ai_routing.gateway import http_model, write_catalogue
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.context.tokens import prompt_tokens
from xynergy.ai_assistant.models import Conversation, Message
from xynergy.platform.config import Settings
from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.db.session import unit_of_work

BUDGET = 600
HISTORY_TURNS = 1_000
DRIVEN_TURNS = 30
ENV = {
    "XYNERGY_ASSISTANT_CONTEXT_BUDGET_TOKENS": str(BUDGET),
    "XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS": "400",
    "XYNERGY_ASSISTANT_SUMMARY_MAX_TOKENS": "100",
    "XYNERGY_ASSISTANT_MESSAGES_PER_CONVERSATION_MAX": "5000",
}


@pytest.fixture
async def long_api(
    make_settings: Callable[..., Settings],
    fake_catalogue: None,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AssistantApi]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    async with assistant_api(make_settings()) as running_api:
        yield running_api


async def _insert_history(api: AssistantApi, conversation_id: str, turns: int) -> None:
    """``turns`` user/assistant pairs written straight to SQL, as if they had happened."""
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for turn in range(turns):
        for offset, role in ((0, "user"), (2, "assistant")):
            rows.append(
                {
                    "id": new_id(),
                    "tenant_id": api.tenant_id,
                    "conversation_id": conversation_id,
                    "seq": 3 * turn + offset,
                    "role": role,
                    "content": f"{role} turn {turn}: " + "words about keywords " * 8,
                    "status": "complete",
                    "created_at": now,
                }
            )
    async with unit_of_work(api.platform.sessionmaker) as session:
        await session.execute(insert(Message), rows)
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(message_count=2 * turns, next_seq=3 * turns)
        )


async def _summaries(api: AssistantApi, conversation_id: str) -> int:
    async with unit_of_work(api.platform.sessionmaker) as session:
        count = await session.scalar(
            select(func.count()).where(
                Message.conversation_id == conversation_id, Message.role == "summary"
            )
        )
    return int(count or 0)


def _pairs(request: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request["messages"]]


class TestLongConversation:
    async def test_never_over_budget_and_one_summary_per_overflow(
        self, long_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = long_api
        settings = AssistantSettings()
        conversation = await api.create("long")
        await _insert_history(api, conversation["id"], HISTORY_TURNS)
        made: list[int] = []
        chat_prompts: list[list[tuple[str, str]]] = []
        for turn in range(DRIVEN_TURNS):
            before_calls = upstream.calls
            before = await _summaries(api, conversation["id"])
            message = f"question {turn}: " + "what about the launch keywords " * 6
            response = await api.send(message, conversation["id"])
            assert response.status_code == 200, response.text
            made.append(await _summaries(api, conversation["id"]) - before)
            received = list(upstream.requests)[-(upstream.calls - before_calls) :]
            chats = [r for r in received if r["messages"][0]["content"] == settings.system_prompt]
            assert len(chats) == 1
            assert chats[0]["messages"][-1]["content"] == message.strip()  # the newest turn
            chat_prompts.append(_pairs(chats[0]))
        # What reached the model, by the AI Routing Engine's own estimate.
        sizes = [prompt_tokens(prompt) for prompt in chat_prompts]
        assert max(sizes) <= BUDGET, sizes
        # The 1,000 inserted turns overflow at once: summarised by the first turn, once.
        assert made[0] == 1
        # Later overflows: one summary each, never on two turns running.
        assert all(count <= 1 for count in made)
        assert not any(made[i] and made[i + 1] for i in range(len(made) - 1)), made
        assert 2 <= sum(made) < DRIVEN_TURNS // 2, made
        # Every prompt after the first turn carries the rolling summary.
        assert all(
            any(content.startswith("Summary of the earlier") for _, content in prompt)
            for prompt in chat_prompts
        )


class TestSummaryLedger:
    async def test_summaries_are_recorded_under_their_own_task(
        self, long_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = long_api
        conversation = await api.create("ledger")
        await _insert_history(api, conversation["id"], HISTORY_TURNS)
        response = await api.send("what changed this week?", conversation["id"])
        assert response.status_code == 200, response.text
        assert await _summaries(api, conversation["id"]) == 1
        # One row for the summary, one for the turn: their costs are told apart.
        tasks = await ledger_tasks(api, at_least=2)
        assert sorted(tasks) == ["assistant", "assistant-summary"]


SMALL_WINDOW = 1_200
SMALL_WINDOW_REPLY = 200


@pytest.fixture
async def small_window_api(
    make_settings: Callable[..., Settings],
    upstream: FakeOpenAI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[AssistantApi]:
    """Model ``small`` with a 1,200-token window; the budget setting (6,000) is above it."""
    catalogue = write_catalogue(
        tmp_path / "catalogue.json",
        providers=[{"name": "fake", "kind": "openai", "base_url": upstream.base_url}],
        models=[
            http_model("small", "fake", context_window=SMALL_WINDOW),
            http_model("tiny", "fake", context_window=300),
        ],
    )
    monkeypatch.setenv("XYNERGY_AI_CATALOGUE", str(catalogue))
    for name, value in {
        "XYNERGY_ASSISTANT_DEFAULT_MODEL": "small",
        "XYNERGY_ASSISTANT_REPLY_MAX_TOKENS": str(SMALL_WINDOW_REPLY),
        "XYNERGY_ASSISTANT_MESSAGE_MAX_CHARS": "400",
        "XYNERGY_ASSISTANT_SUMMARY_MAX_TOKENS": "100",
    }.items():
        monkeypatch.setenv(name, value)
    async with assistant_api(make_settings()) as running_api:
        yield running_api


class TestModelContextWindow:
    async def test_nothing_is_sent_over_the_models_window(
        self, small_window_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = small_window_api
        assert AssistantSettings().context_budget_tokens > SMALL_WINDOW  # the window decides
        conversation = await api.create("small window")
        for turn in range(24):
            message = f"turn {turn}: " + "tell me more about the spring launch keywords " * 7
            response = await api.send(message, conversation["id"])
            assert response.status_code == 200, response.text
        assert await _summaries(api, conversation["id"]) >= 1  # the window made it summarise
        # Every call the model received (turns and summaries) fits its window with its reply.
        sizes = [prompt_tokens(_pairs(body)) + body["max_tokens"] for body in upstream.requests]
        assert len(sizes) >= 25
        assert max(sizes) <= SMALL_WINDOW, sizes

    async def test_a_window_too_small_for_the_message_refuses_the_turn(
        self, small_window_api: AssistantApi, upstream: FakeOpenAI
    ) -> None:
        api = small_window_api
        # Model "tiny" cannot hold the system prompt, a 400-character message and a reply
        # of 200 tokens: the reply fails saying so, and the model is never called.
        response = await api.send("w" * 400, model="tiny")
        assert response.status_code == 422, response.text
        assert "context window of 300 tokens" in response.json()["detail"]
        assert upstream.calls == 0
