"""The Anthropic Messages API (``POST {base_url}/v1/messages``).

Translates to and from the OpenAI-shaped types the router speaks: system
messages move to the top-level ``system`` field, same-role neighbours are
merged (the API requires user and assistant turns to alternate), and
``stop_reason`` becomes an OpenAI ``finish_reason``. Tool use is translated by
:mod:`.anthropic_tools`.
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
from xynergy.ai_routing.providers.anthropic_tools import (
    anthropic_tools,
    anthropic_turns,
    tool_call_of,
)
from xynergy.ai_routing.providers.base import (
    Completion,
    ProviderError,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UpstreamRequest,
    Usage,
)

__all__ = ["ANTHROPIC_VERSION", "AnthropicProvider"]

ANTHROPIC_VERSION = "2023-06-01"

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# The HTTP status each documented error type is sent with, so that an error
# arriving inside a stream is classified like the same error as a status.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider(HTTPProvider):
    """A provider that speaks the Anthropic Messages API."""

    kind = "anthropic"
    endpoint_path = "/v1/messages"

    async def complete(self, request: UpstreamRequest) -> Completion:
        """The whole answer; raises ProviderError."""
        async with self._upstream.post(
            self._url, self._payload(request, stream=False), self._headers(request)
        ) as response:
            data = await self._upstream.read_json(response)
        try:
            text = "".join(
                block["text"] for block in data["content"] if block.get("type") == "text"
            )
            calls = tuple(
                tool_call_of(block) for block in data["content"] if block.get("type") == "tool_use"
            )
            usage = Usage(
                input_tokens=as_token_count(data["usage"]["input_tokens"]),
                output_tokens=as_token_count(data["usage"]["output_tokens"]),
            )
        except MALFORMED as exc:
            raise self._upstream.malformed("answer", exc) from exc
        return Completion(
            text=text,
            finish_reason=_finish_reason(data.get("stop_reason")),
            usage=usage,
            tool_calls=calls,
        )

    async def stream(self, request: UpstreamRequest) -> AsyncGenerator[StreamEvent, None]:
        """Deltas then one StreamEnd; raises ProviderError, also midway (a cut stream)."""
        input_tokens: int | None = None
        output_tokens: int | None = None
        stop_reason: object = None
        # Anthropic numbers content blocks; OpenAI numbers tool calls only.
        tool_index: dict[int, int] = {}
        with_arguments: set[int] = set()
        async with self._upstream.post(
            self._url, self._payload(request, stream=True), self._headers(request)
        ) as response:
            async for event in self._upstream.events(response):
                data = self._event_data(event.data)
                kind = data.get("type")
                if event.event == "error" or kind == "error":
                    raise self._stream_error(data.get("error"))
                try:
                    if kind == "message_start":
                        input_tokens = as_token_count(data["message"]["usage"]["input_tokens"])
                    elif kind == "content_block_start":
                        block = data["content_block"]
                        if block.get("type") == "tool_use":
                            call = tool_call_of({**block, "input": {}})
                            tool_index[data["index"]] = len(tool_index)
                            yield ToolCallDelta(tool_index[data["index"]], call.id, call.name)
                    elif kind == "content_block_delta":
                        delta = data["delta"]
                        if delta.get("type") == "text_delta" and _text(delta["text"]):
                            yield TextDelta(delta["text"])
                        elif delta.get("type") == "input_json_delta":
                            index = tool_index[data["index"]]
                            if _text(delta["partial_json"]):
                                with_arguments.add(index)
                                yield ToolCallDelta(index, arguments=delta["partial_json"])
                    elif kind == "content_block_stop":
                        index = tool_index.get(data["index"], -1)
                        if index >= 0 and index not in with_arguments:
                            # A call without input streams no JSON; OpenAI clients
                            # expect the arguments to parse.
                            yield ToolCallDelta(index, arguments="{}")
                    elif kind == "message_delta":
                        stop_reason = data["delta"].get("stop_reason") or stop_reason
                        usage = data["usage"]
                        output_tokens = as_token_count(usage["output_tokens"])
                        # Newer API versions also restate input tokens here; trust the latest.
                        if usage.get("input_tokens") is not None:
                            input_tokens = as_token_count(usage["input_tokens"])
                except MALFORMED as exc:
                    raise self._upstream.malformed(f"{kind} event", exc) from exc
                if kind == "message_stop":
                    if input_tokens is None or output_tokens is None:
                        raise self._upstream.invalid("stream ended without usage")
                    yield StreamEnd(
                        finish_reason=_finish_reason(stop_reason),
                        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
                    )
                    return
        raise self._upstream.invalid("stream cut before message_stop")

    def _payload(self, request: UpstreamRequest, *, stream: bool) -> dict[str, Any]:
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        payload: dict[str, Any] = {
            "model": request.model,
            "messages": anthropic_turns(request.messages),
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        if request.tools is not None:
            payload.update(anthropic_tools(request.tools))
        if system:
            payload["system"] = system
        if request.temperature is not None:
            payload["temperature"] = request.temperature
        if request.top_p is not None:
            payload["top_p"] = request.top_p
        if request.stop:
            payload["stop_sequences"] = list(request.stop)
        return payload

    def _headers(self, request: UpstreamRequest) -> dict[str, str]:
        headers = {
            "anthropic-version": ANTHROPIC_VERSION,
            **request_id_header(request.request_id),
        }
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _event_data(self, data: str) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            raise self._upstream.invalid("stream event is not JSON") from exc
        if not isinstance(parsed, dict):
            raise self._upstream.invalid("stream event is not a JSON object")
        return parsed

    def _stream_error(self, error: Any) -> ProviderError:
        error = error if isinstance(error, dict) else {}
        error_type, message = error.get("type"), error.get("message")
        detail = f"{self.name}: stream error {error_type}: {message}"
        status = _ERROR_STATUS.get(error_type) if isinstance(error_type, str) else None
        if status is None:
            return self._upstream.invalid(f"stream error {error_type}: {message}")
        return ProviderError.from_status(status, self._upstream.clean(detail))


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("text is not a string")
    return value


def _finish_reason(stop_reason: object) -> str:
    if not isinstance(stop_reason, str):
        return "stop"
    return _FINISH_REASONS.get(stop_reason, stop_reason)
