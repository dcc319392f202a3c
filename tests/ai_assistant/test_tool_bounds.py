"""Per-turn tool bounds at and over their limits: calls, result size, tokens."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import pytest

from tests.ai_assistant.harness import AssistantApi, assistant_api
from tests.ai_assistant.tools_support import (
    ASK,
    CAMPAIGNS,
    rows,
    seed_trending,
    tool_key,
    tool_rows,
)
from xynergy.ai_assistant.tools.calls import cut
from xynergy.platform.config import Settings

RESULT_MAX = 200


Starter = Callable[..., AbstractAsyncContextManager[AssistantApi]]


@pytest.fixture
def bounded(make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Starter:
    """Starts the platform with the given assistant settings (names without prefix)."""

    def start(**env: str) -> AbstractAsyncContextManager[AssistantApi]:
        for name, value in env.items():
            monkeypatch.setenv(f"XYNERGY_ASSISTANT_{name.upper()}", value)
        return assistant_api(make_settings())

    return start


class TestToolCallsPerTurn:
    @pytest.mark.parametrize(
        ("limit", "tools_run"), [(0, []), (1, ["ran"]), (2, ["ran", "proposed"])]
    )
    async def test_at_and_over_the_limit(
        self, bounded: Starter, limit: int, tools_run: list[str]
    ) -> None:
        async with bounded(tool_calls_per_turn_max=str(limit)) as api:
            headers = await tool_key(api, *CAMPAIGNS)
            response = await api.send(ASK, headers=headers)
            assert response.status_code == 200
            conversation_id = response.json()["conversation_id"]
            found = await tool_rows(api, conversation_id)
            assert [row.tool_calls[0]["outcome"] for row in found if row.tool_calls] == tools_run
            # Past the limit the reply is asked for without tools: nothing else is written.
            assistant = [row for row in await rows(api, conversation_id) if row.role == "assistant"]
            assert len(assistant) == len(tools_run) + 1


class TestToolResultSize:
    async def test_a_long_result_is_cut_with_a_note(self, bounded: Starter) -> None:
        async with bounded(tool_result_max_chars=str(RESULT_MAX)) as api:
            await seed_trending(api)
            headers = await tool_key(api, *CAMPAIGNS)
            turn = (await api.send(ASK, headers=headers)).json()
            trending = (await tool_rows(api, turn["conversation_id"]))[0]
            assert len(trending.content) <= RESULT_MAX
            assert "[Result truncated:" in trending.content

    def test_cut_keeps_a_result_at_the_limit_whole(self) -> None:
        assert cut("x" * RESULT_MAX, RESULT_MAX) == "x" * RESULT_MAX
        over = cut("x" * (RESULT_MAX + 1), RESULT_MAX)
        assert len(over) <= RESULT_MAX
        assert over.endswith("1 of 201 characters left out.]")


class TestTokensPerTurn:
    async def test_the_turn_stops_once_its_tokens_are_used(self, bounded: Starter) -> None:
        async with bounded(turn_tokens_max="64") as api:
            headers = await tool_key(api, *CAMPAIGNS)
            turn = (await api.send(ASK, headers=headers)).json()
            assert "used its 64 tokens" in turn["reply"]["content"]
            found = await tool_rows(api, turn["conversation_id"])
            assert len(found) == 1  # the first round ran; no second model call was made
            assert turn["reply"]["usage"] is None or turn["reply"]["usage"]["input_tokens"] == 0
            assert turn["usage"]["input_tokens"] > 0  # the turn's total: the round's call
