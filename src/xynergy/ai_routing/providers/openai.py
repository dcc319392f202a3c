"""OpenAI-compatible chat completions (``POST {base_url}/chat/completions``).

Also serves the many servers that copy this API (vLLM, llama.cpp, Ollama, ...),
so parsing accepts what they commonly vary on (a null ``content``, a missing
``finish_reason``) and refuses what would make the answer or its bill unknown.
Tools, tool calls and tool results are this API's own: they pass through as sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

from xynergy.ai_routing.providers._http import (
    MALFORMED,
    HTTPProvider,
    as_token_count,
    request_id_header,
)
from xynergy.ai_routing.providers.base import (
    ChatMessage,
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Tools,
    UpstreamRequest,
    Usage,
)

__all__ = ["OpenAIProvider"]

_DONE = "[DONE]"


class OpenAIProvider(HTTPProvider):
    """A provider that speaks the OpenAI chat completions API."""

    kind = "openai"
    endpoint_path = "/chat/completions"

    async def complete(self, request: UpstreamRequest) -> Completion:
        """The whole answer; raises ProviderError."""
        payload = {**self._payload(request), "stream": False}
        async with self._upstream.post(self._url, payload, self._headers(request)) as response:
            data = await self._upstream.read_json(response)
        try:
            choice = data["choices"][0]
            content = choice["message"]["content"]
            finish_reason = choice.get("finish_reason")
            usage = _usage(data["usage"])
            if content is not None and not isinstance(content, str):
                raise ValueError("content is not text")
            calls = tuple(_tool_call(call) for call in choice["message"].get("tool_calls") or ())
        except MALFORMED as exc:
            raise self._upstream.malformed("answer", exc) from exc
        return Completion(
            text=content or "",
            finish_reason=finish_reason if isinstance(finish_reason, str) else "stop",
            usage=usage,
            tool_calls=calls,
        )

    async def stream(self, request: UpstreamRequest) -> AsyncGenerator[StreamEvent, None]:
        """Deltas then one StreamEnd; raises ProviderError, also midway (a cut stream)."""
        payload = {
            **self._payload(request),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        finish_reason: str | None = None
        usage: Usage | None = None
        async with self._upstream.post(self._url, payload, self._headers(request)) as response:
            async for event in self._upstream.events(response):
                if event.data.strip() == _DONE:
                    if usage is None:
                        raise self._upstream.invalid("stream ended without usage")
                    yield StreamEnd(finish_reason=finish_reason or "stop", usage=usage)
                    return
                chunk = self._chunk(event.data)
                try:
                    if chunk.get("usage") is not None:
                        usage = _usage(chunk["usage"])
                    text, reason = _choice(chunk.get("choices"))
                    calls = _tool_call_deltas(chunk.get("choices"))
                except MALFORMED as exc:
                    raise self._upstream.malformed("stream chunk", exc) from exc
                finish_reason = reason or finish_reason
                if text:
                    yield TextDelta(text)
                for call in calls:
                    yield call
        raise self._upstream.invalid("stream cut before [DONE]")

    def _payload(self, request: UpstreamRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": [_message(m) for m in request.messages],
            "max_tokens": request.max_tokens,
        }
        if request.tools is not None:
            payload.update(_tools(request.tools))
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        if request.stop:
            payload["stop"] = list(request.stop)
        return payload

    def _headers(self, request: UpstreamRequest) -> dict[str, str]:
        headers = request_id_header(request.request_id)
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _chunk(self, data: str) -> dict[str, Any]:
        try:
            chunk = json.loads(data)
        except ValueError as exc:
            raise self._upstream.invalid("stream chunk is not JSON") from exc
        if not isinstance(chunk, dict):
            raise self._upstream.invalid("stream chunk is not a JSON object")
        if chunk.get("error") is not None:
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise self._upstream.invalid(f"stream error: {message}")
        return chunk


def _choice(choices: Any) -> tuple[str, str | None]:
    """The delta text and finish reason of a chunk's first choice (usage chunks have none)."""
    if not choices:
        return "", None
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = delta.get("content")
    reason = choice.get("finish_reason")
    return (text if isinstance(text, str) else "", reason if isinstance(reason, str) else None)


def _message(message: ChatMessage) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        # OpenAI's own shape for a turn that only calls tools: null content.
        wire["content"] = message.content or None
        wire["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        wire["tool_call_id"] = message.tool_call_id
    return wire


def _tools(tools: Tools) -> dict[str, Any]:
    functions = []
    for tool in tools.specs:
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
        if tool.description:
            function["description"] = tool.description
        if tool.strict is not None:
            function["strict"] = tool.strict
        functions.append({"type": "function", "function": function})
    choice: Any = tools.mode
    if tools.mode == "named":
        choice = {"type": "function", "function": {"name": tools.name}}
    wire: dict[str, Any] = {"tools": functions, "tool_choice": choice}
    if tools.parallel is not None:
        wire["parallel_tool_calls"] = tools.parallel
    return wire


def _tool_call(data: Any) -> ToolCall:
    function = data["function"]
    call = ToolCall(id=data["id"], name=function["name"], arguments=function["arguments"])
    if not all(isinstance(value, str) for value in (call.id, call.name, call.arguments)):
        raise ValueError("tool call fields are not text")
    return call


def _tool_call_deltas(choices: Any) -> list[ToolCallDelta]:
    """The tool-call pieces of a chunk's first choice."""
    if not choices:
        return []
    deltas = []
    for data in (choices[0].get("delta") or {}).get("tool_calls") or ():
        function = data.get("function") or {}
        index, call_id, name = data["index"], data.get("id"), function.get("name")
        arguments = function.get("arguments") or ""
        if not isinstance(index, int) or not isinstance(arguments, str):
            raise ValueError("tool call delta is malformed")
        deltas.append(
            ToolCallDelta(
                index=index,
                id=call_id if isinstance(call_id, str) else None,
                name=name if isinstance(name, str) else None,
                arguments=arguments,
            )
        )
    return deltas


def _usage(data: Any) -> Usage:
    return Usage(
        input_tokens=as_token_count(data["prompt_tokens"]),
        output_tokens=as_token_count(data["completion_tokens"]),
    )
