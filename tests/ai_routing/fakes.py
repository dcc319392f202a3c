"""Local fake AI upstreams that speak the real OpenAI and Anthropic HTTP protocols.

Each fake is an aiohttp server on a free loopback port, run by an async context
manager::

    async with FakeOpenAI() as upstream:        # or FakeAnthropic()
        spec = ProviderSpec(name="oa", kind="openai", base_url=upstream.base_url)
        upstream.fail_next(2, status=503)       # then answers normally
        ...
        assert upstream.calls == 3

Answers are deterministic: the text is ``"echo: <last user message>"``, cut to
``max_tokens`` words (then the finish reason is ``length``), streamed in up to
:data:`STREAM_CHUNKS` deltas. Tokens are whitespace-separated words, at least 1:
input counts every message (and Anthropic's ``system``), output counts the answer.
Use :func:`expected_answer` and :func:`count_tokens` to predict them.

Knobs (plain attributes or methods, change them any time):
    fail_next(n, status=500, message=None): the next n requests get an error status.
    delay_seconds: sleep before answering (drive client timeouts).
    gate: an asyncio.Event; when set to one, requests wait for it before answering.
    chunk_delay_seconds: sleep between streamed chunks.
    cut_stream_after(n): streams close the connection after n deltas, without
        their end marker, until cut_stream_after(None).
    error_stream_after(n, message): streams send an in-stream error event after
        n deltas, until error_stream_after(None).
    raw_body: bytes sent as-is with status 200 instead of an answer (a broken
        upstream); JSON content type, or text/event-stream when streaming.
    api_key: when set, requests without it get a 401 (constructor argument).
    tool_call: (name, arguments) or None; when set, a request that offers tools
        and does not end with a tool result is answered with that one tool call
        (id ``call_fake_<n>`` / ``toolu_fake_<n>``, finish reason ``tool_calls`` /
        ``tool_use``; output tokens: the words of the arguments' JSON). A request
        ending with a tool result gets ``echo: <that result>``.

Observations:
    calls (requests received, failed ones included), in_flight, max_in_flight,
    answered (complete answers sent), requests and headers (the last
    HISTORY bodies and lower-cased headers), reported_input_tokens and
    reported_output_tokens (summed over complete answers), wait_for_calls(n).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import deque
from types import TracebackType
from typing import Any, Self

from aiohttp import web

__all__ = [
    "HISTORY",
    "STREAM_CHUNKS",
    "FakeAnthropic",
    "FakeOpenAI",
    "FakeUpstream",
    "count_tokens",
    "expected_answer",
]

HISTORY = 100
STREAM_CHUNKS = 4
_WORD = re.compile(r"\S+\s*")


def count_tokens(text: str) -> int:
    """The fakes' token count of ``text``: its whitespace-separated words, at least 1."""
    return max(1, len(text.split()))


def expected_answer(last_user_message: str, max_tokens: int = 1_000_000) -> str:
    """The text a fake answers to ``last_user_message``."""
    words = _WORD.findall(f"echo: {last_user_message}")
    return "".join(words[:max_tokens])


def _chunks(text: str) -> list[str]:
    words = _WORD.findall(text) or [text]
    size = -(-len(words) // STREAM_CHUNKS)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


class FakeUpstream:
    """What both fakes share: the server, the knobs and the counters."""

    path = "/"
    _max_tokens_required = False

    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.delay_seconds = 0.0
        self.chunk_delay_seconds = 0.0
        self.gate: asyncio.Event | None = None
        self.raw_body: bytes | None = None
        self.tool_call: tuple[str, dict[str, Any]] | None = None
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.headers: deque[dict[str, str]] = deque(maxlen=HISTORY)
        self.reported_input_tokens = 0
        self.reported_output_tokens = 0
        self._failures: deque[tuple[int, str | None]] = deque()
        self._cut_after: int | None = None
        self._error_after: tuple[int, str] | None = None
        self._runner: web.AppRunner | None = None
        self._sock: socket.socket | None = None
        self._called = asyncio.Condition()

    # --- lifecycle ------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The URL to put in a ProviderSpec."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The loopback port the fake listens on."""
        if self._sock is None:
            raise RuntimeError("the fake is not running")
        return int(self._sock.getsockname()[1])

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(self.path, self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        # A deep backlog: dedup tests open a thousand connections at once.
        await web.SockSite(self._runner, self._sock, backlog=2048).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gate is not None:
            self.gate.set()  # never leave handlers waiting on shutdown
        if self._runner is not None:
            await self._runner.cleanup()
        if self._sock is not None:
            self._sock.close()

    # --- knobs ----------------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500, message: str | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` and a protocol error body."""
        self._failures.extend([(status, message)] * n)

    def cut_stream_after(self, n_chunks: int | None) -> None:
        """Drop the connection after ``n_chunks`` text deltas of every stream (None: stop)."""
        self._cut_after = n_chunks

    def error_stream_after(self, n_chunks: int | None, message: str = "overloaded") -> None:
        """Send an error event after ``n_chunks`` deltas of every stream (None: stop)."""
        self._error_after = None if n_chunks is None else (n_chunks, message)

    async def wait_for_calls(self, n: int, timeout: float = 30.0) -> None:
        """Return once ``n`` requests have been received in total."""
        async with asyncio.timeout(timeout), self._called:
            await self._called.wait_for(lambda: self.calls >= n)

    # --- protocol hooks (subclasses) ------------------------------------------------

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        """The status and message a real upstream would refuse these headers with."""
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def _prompt(self, body: dict[str, Any]) -> tuple[str, int]:
        """The last user message and the input token count."""
        raise NotImplementedError

    def _answer_body(
        self, body: dict[str, Any], text: str, finished: bool, usage: tuple[int, int]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _stream_events(
        self, body: dict[str, Any], chunks: list[str], finished: bool, usage: tuple[int, int]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Wire events before, as, and after the text deltas (one delta per chunk)."""
        raise NotImplementedError

    def _stream_error(self, message: str) -> bytes:
        raise NotImplementedError

    def _ends_with_tool_result(self, body: dict[str, Any]) -> bool:
        raise NotImplementedError

    def _tool_answer_body(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def _tool_stream_events(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> list[bytes]:
        raise NotImplementedError

    # --- serving --------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        async with self._called:
            self.calls += 1
            self._called.notify_all()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.headers.append({k.lower(): v for k, v in request.headers.items()})
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "body is not JSON")
        if not isinstance(body, dict):
            return self._error(400, "body is not a JSON object")
        self.requests.append(body)
        if self.gate is not None:
            await self.gate.wait()
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self._failures:
            status, message = self._failures.popleft()
            return self._error(status, message or f"scripted failure {status}")
        if self.raw_body is not None:
            kind = "text/event-stream" if body.get("stream") else "application/json"
            return web.Response(body=self.raw_body, content_type=kind)
        refusal = self._refusal(request)
        if refusal is not None:
            return self._error(*refusal)
        try:
            last_user, input_tokens = self._prompt(body)
            max_tokens = int(
                body["max_tokens"]
                if self._max_tokens_required
                else body.get("max_tokens") or 1_000_000
            )
        except (KeyError, TypeError, ValueError) as exc:
            return self._error(400, f"invalid request: {exc!r}")
        if (
            self.tool_call is not None
            and body.get("tools")
            and not self._ends_with_tool_result(body)
        ):
            return await self._call_tool(request, body, input_tokens)
        full = expected_answer(last_user)
        text = expected_answer(last_user, max_tokens)
        usage = (input_tokens, count_tokens(text))
        if body.get("stream"):
            return await self._stream(request, body, text, text == full, usage)
        self._reported(usage)
        return web.json_response(self._answer_body(body, text, text == full, usage))

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        text: str,
        finished: bool,
        usage: tuple[int, int],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunks = _chunks(text)
        head, deltas, tail = self._stream_events(body, chunks, finished, usage)
        for event in head:
            await response.write(event)
        for sent, event in enumerate(deltas):
            if self._cut_after is not None and sent >= self._cut_after:
                return self._drop(request, response)
            if self._error_after is not None and sent >= self._error_after[0]:
                await response.write(self._stream_error(self._error_after[1]))
                return response
            if self.chunk_delay_seconds:
                await asyncio.sleep(self.chunk_delay_seconds)
            await response.write(event)
        if self._cut_after is not None:
            return self._drop(request, response)
        for event in tail:
            await response.write(event)
        self._reported(usage)
        return response

    async def _call_tool(
        self, request: web.Request, body: dict[str, Any], input_tokens: int
    ) -> web.StreamResponse:
        assert self.tool_call is not None
        arguments = json.dumps(self.tool_call[1])
        usage = (input_tokens, count_tokens(arguments))
        if not body.get("stream"):
            self._reported(usage)
            return web.json_response(self._tool_answer_body(body, arguments, usage))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in self._tool_stream_events(body, arguments, usage):
            await response.write(event)
        self._reported(usage)
        return response

    def _drop(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        # Close the socket mid-body (after flushing what was written): the client sees
        # an unterminated chunked body, like a real upstream dying midway.
        if request.transport is not None:
            request.transport.close()
        return response

    def _error(self, status: int, message: str) -> web.Response:
        return web.json_response(self._error_body(status, message), status=status)

    def _reported(self, usage: tuple[int, int]) -> None:
        self.answered += 1
        self.reported_input_tokens += usage[0]
        self.reported_output_tokens += usage[1]


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def _message_text(content: Any) -> str:
    """A message's text; Anthropic ``tool_result`` blocks count with their content."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        str(block.get("text") or block.get("content") or "")
        for block in content
        if isinstance(block, dict)
    )


def _halves(text: str) -> list[str]:
    return [text[: len(text) // 2], text[len(text) // 2 :]]


class FakeOpenAI(FakeUpstream):
    """``POST /v1/chat/completions``; ``base_url`` ends in ``/v1``, as OpenAI's does."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return 401, "Incorrect API key provided"

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = "server_error" if status >= 500 else "invalid_request_error"
        if status == 429:
            kind = "rate_limit_exceeded"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def _prompt(self, body: dict[str, Any]) -> tuple[str, int]:
        messages = body["messages"]
        users = [_message_text(m.get("content")) for m in messages if m["role"] in ("user", "tool")]
        words = sum(len(_message_text(m.get("content")).split()) for m in messages)
        return (users[-1] if users else ""), max(1, words)

    def _ends_with_tool_result(self, body: dict[str, Any]) -> bool:
        return bool(body["messages"]) and body["messages"][-1]["role"] == "tool"

    def _tool_call(self, arguments: str) -> dict[str, Any]:
        assert self.tool_call is not None
        return {
            "id": f"call_fake_{self.calls}",
            "type": "function",
            "function": {"name": self.tool_call[0], "arguments": arguments},
        }

    def _tool_answer_body(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> dict[str, Any]:
        answer = self._answer_body(body, "", True, usage)
        answer["choices"][0]["message"] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [self._tool_call(arguments)],
        }
        answer["choices"][0]["finish_reason"] = "tool_calls"
        return answer

    def _tool_stream_events(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> list[bytes]:
        base = {
            "id": f"chatcmpl-fake-{self.calls}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body.get("model"),
        }

        def choice(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            return _sse(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            )

        call = self._tool_call("")
        events = [
            choice({"role": "assistant", "content": None, "tool_calls": [{"index": 0, **call}]})
        ]
        events += [
            choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            for piece in _halves(arguments)
        ]
        events.append(choice({}, "tool_calls"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_body = {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            }
            events.append(_sse({**base, "choices": [], "usage": usage_body}))
        return [*events, _sse("[DONE]")]

    def _answer_body(
        self, body: dict[str, Any], text: str, finished: bool, usage: tuple[int, int]
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-fake-{self.calls}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop" if finished else "length",
                }
            ],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": usage[0] + usage[1],
            },
        }

    def _stream_events(
        self, body: dict[str, Any], chunks: list[str], finished: bool, usage: tuple[int, int]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        base = {
            "id": f"chatcmpl-fake-{self.calls}",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": body.get("model"),
        }

        def choice(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
            return _sse(
                {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
            )

        head = [choice({"role": "assistant", "content": ""})]
        deltas = [choice({"content": chunk}) for chunk in chunks]
        tail = [choice({}, "stop" if finished else "length")]
        if (body.get("stream_options") or {}).get("include_usage"):
            usage_body = {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            }
            tail.append(_sse({**base, "choices": [], "usage": usage_body}))
        tail.append(_sse("[DONE]"))
        return head, deltas, tail

    def _stream_error(self, message: str) -> bytes:
        return _sse({"error": {"message": message, "type": "server_error", "code": None}})


class FakeAnthropic(FakeUpstream):
    """``POST /v1/messages``; ``base_url`` is the bare origin, as Anthropic's is."""

    path = "/v1/messages"
    _max_tokens_required = True
    _ERROR_TYPES = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def _refusal(self, request: web.Request) -> tuple[int, str] | None:
        if request.headers.get("anthropic-version") is None:
            return 400, "anthropic-version: header is required"
        if self.api_key is None or request.headers.get("x-api-key") == self.api_key:
            return None
        return 401, "invalid x-api-key"

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        kind = self._ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def _prompt(self, body: dict[str, Any]) -> tuple[str, int]:
        messages = body["messages"]
        roles = [m["role"] for m in messages]
        if (
            not messages
            or any(r not in ("user", "assistant") for r in roles)
            or any(a == b for a, b in zip(roles, roles[1:], strict=False))
        ):
            raise ValueError("messages must alternate user and assistant")
        users = [_message_text(m["content"]) for m in messages if m["role"] == "user"]
        system = body.get("system") or ""
        words = len(_message_text(system).split()) + sum(
            len(_message_text(m["content"]).split()) for m in messages
        )
        return (users[-1] if users else ""), max(1, words)

    def _answer_body(
        self, body: dict[str, Any], text: str, finished: bool, usage: tuple[int, int]
    ) -> dict[str, Any]:
        return {
            "id": f"msg_fake_{self.calls}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn" if finished else "max_tokens",
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }

    def _stream_events(
        self, body: dict[str, Any], chunks: list[str], finished: bool, usage: tuple[int, int]
    ) -> tuple[list[bytes], list[bytes], list[bytes]]:
        start = {
            **self._answer_body(body, "", finished, (usage[0], 1)),
            "content": [],
            "stop_reason": None,
        }
        head = [
            _sse({"type": "message_start", "message": start}, "message_start"),
            _sse(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
                "content_block_start",
            ),
            _sse({"type": "ping"}, "ping"),
        ]
        deltas = [
            _sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": chunk},
                },
                "content_block_delta",
            )
            for chunk in chunks
        ]
        tail = [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": "end_turn" if finished else "max_tokens",
                        "stop_sequence": None,
                    },
                    "usage": {"output_tokens": usage[1]},
                },
                "message_delta",
            ),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
        return head, deltas, tail

    def _stream_error(self, message: str) -> bytes:
        return _sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": message}}, "error"
        )

    def _ends_with_tool_result(self, body: dict[str, Any]) -> bool:
        content = body["messages"][-1]["content"] if body["messages"] else ""
        return isinstance(content, list) and any(
            isinstance(block, dict) and block.get("type") == "tool_result" for block in content
        )

    def _tool_use(self) -> dict[str, Any]:
        assert self.tool_call is not None
        return {
            "type": "tool_use",
            "id": f"toolu_fake_{self.calls}",
            "name": self.tool_call[0],
            "input": self.tool_call[1],
        }

    def _tool_answer_body(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> dict[str, Any]:
        answer = self._answer_body(body, "", True, usage)
        answer["content"] = [{"type": "text", "text": "Let me check."}, self._tool_use()]
        answer["stop_reason"] = "tool_use"
        return answer

    def _tool_stream_events(
        self, body: dict[str, Any], arguments: str, usage: tuple[int, int]
    ) -> list[bytes]:
        start = {
            **self._answer_body(body, "", True, (usage[0], 1)),
            "content": [],
            "stop_reason": None,
        }

        def event(kind: str, **data: Any) -> bytes:
            return _sse({"type": kind, **data}, kind)

        return [
            event("message_start", message=start),
            event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
            event(
                "content_block_delta",
                index=0,
                delta={"type": "text_delta", "text": "Let me check."},
            ),
            event("content_block_stop", index=0),
            event("content_block_start", index=1, content_block={**self._tool_use(), "input": {}}),
            *(
                event(
                    "content_block_delta",
                    index=1,
                    delta={"type": "input_json_delta", "partial_json": piece},
                )
                for piece in ["", *_halves(arguments)]
            ),
            event("content_block_stop", index=1),
            event(
                "message_delta",
                delta={"stop_reason": "tool_use", "stop_sequence": None},
                usage={"output_tokens": usage[1]},
            ),
            event("message_stop"),
        ]
