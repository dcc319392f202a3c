"""The provider interface: one upstream request in, a completion or a stream out.

Every provider speaks these types, so the router never sees a wire format.
Errors are classified here once (:class:`ProviderError`) so that the router's
retry and breaker decisions do not depend on which provider failed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "ChatMessage",
    "Completion",
    "Provider",
    "ProviderError",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Tools",
    "UpstreamRequest",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
ToolMode = Literal["none", "auto", "required", "named"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn. An assistant turn may carry ``tool_calls`` (and empty content); a
    ``tool`` turn answers the call named by ``tool_call_id``."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is its JSON Schema (an object)."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Tools:
    """The functions offered and how the model may use them.

    ``mode``: ``none`` never call, ``auto`` the model decides, ``required`` call at
    least one, ``named`` call ``name``. ``parallel``: None leaves it to the provider.
    """

    specs: tuple[ToolSpec, ...]
    mode: ToolMode = "auto"
    name: str | None = None
    parallel: bool | None = None

    def fingerprint(self) -> list[object]:
        """What decides the answer, in a stable JSON-able form."""
        return [
            [[t.name, t.description, t.parameters, t.strict] for t in self.specs],
            self.mode,
            self.name,
            self.parallel,
        ]

    def spec(self, name: str) -> ToolSpec | None:
        return next((tool for tool in self.specs if tool.name == name), None)


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What a provider is asked; ``model`` is the provider's own model name."""

    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    request_id: str = ""
    tools: Tools | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of a complete stream; a stream that ends without it was cut."""

    finish_reason: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call: its id and name come first (once), then
    pieces of its arguments, which concatenate to the JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


StreamEvent = TextDelta | ToolCallDelta | StreamEnd


class ProviderError(Exception):
    """A provider call that did not produce an answer.

    Attributes:
        status: the upstream HTTP status, or None (connection error, timeout, bad body).
        retryable: another candidate may be tried (the request was not the problem).
        breaker_failure: counts towards the provider's circuit breaker (upstream unwell,
            not a 4xx about the request).
        timeout: the upstream did not answer in time.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        retryable: bool,
        breaker_failure: bool,
        timeout: bool = False,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.retryable = retryable
        self.breaker_failure = breaker_failure
        self.timeout = timeout

    @classmethod
    def from_status(cls, status: int, detail: str) -> ProviderError:
        """Classify an HTTP error answer.

        5xx: the upstream is unwell (retry elsewhere, count). 429 and 401/403: the
        request is fine but this provider will not serve it now (retry elsewhere,
        do not count: a 4xx never opens a breaker). Other 4xx: the request itself is
        wrong; another provider would refuse it too.
        """
        if status >= 500:
            return cls(detail, status=status, retryable=True, breaker_failure=True)
        if status in (401, 403, 408, 409, 429):
            return cls(detail, status=status, retryable=True, breaker_failure=False)
        return cls(detail, status=status, retryable=False, breaker_failure=False)

    @classmethod
    def unreachable(cls, detail: str, *, timeout: bool = False) -> ProviderError:
        """Connection refused or reset, a timeout, or a body that is not the protocol."""
        return cls(detail, retryable=True, breaker_failure=True, timeout=timeout)


class Provider(Protocol):
    """One configured upstream (a catalogue provider entry)."""

    name: str
    kind: str

    async def complete(self, request: UpstreamRequest) -> Completion:
        """The whole answer; raises ProviderError."""
        ...

    def stream(self, request: UpstreamRequest) -> AsyncGenerator[StreamEvent, None]:
        """Deltas then one StreamEnd; raises ProviderError, also midway (a cut stream)."""
        ...
