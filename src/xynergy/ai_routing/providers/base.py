"""The provider interface: one upstream request in, a completion or a stream out.

Every provider speaks these types, so the router never sees a wire format.
Errors are classified here once (:class:`ProviderError`) so that the router's
retry and breaker decisions do not depend on which provider failed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "ChatMessage",
    "Completion",
    "Provider",
    "ProviderError",
    "StreamEnd",
    "StreamEvent",
    "TextDelta",
    "UpstreamRequest",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    content: str


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


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last event of a complete stream; a stream that ends without it was cut."""

    finish_reason: str
    usage: Usage


StreamEvent = TextDelta | StreamEnd


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
