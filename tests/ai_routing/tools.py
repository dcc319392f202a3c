"""Tool definitions and conversations shared by the tool-calling tests."""

from __future__ import annotations

import json
from typing import Any

SEARCH_KEYWORDS: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "search_keywords",
        "description": "Search the tracked keywords and their trend.",
        "parameters": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to search for."},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "period": {"type": "string", "enum": ["daily", "weekly", "monthly"]},
            },
            "required": ["query", "limit", "period"],
        },
    },
}
GET_WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TOOLS = [SEARCH_KEYWORDS, GET_WEATHER]
QUESTION = "Which keywords about yoga mats are trending weekly? Show the top 5 results"
RESULT = {"keywords": ["yoga mat", "cork yoga mat"], "trend": "rising"}


def ask(content: str = QUESTION) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


def answered(
    call_id: str, name: str, arguments: str, result: Any = RESULT, content: str | None = None
) -> list[dict[str, Any]]:
    """The conversation after the assistant called ``name`` and the tool answered."""
    return [
        *ask(),
        {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps(result)},
    ]
