"""The gateway's normalised request and answer, whichever API they came through.

Both endpoints (the platform's ``/api/generate/intelligent`` and the
OpenAI-compatible ``/v1/chat/completions``) turn their body into a
:class:`ChatRequest`; its :meth:`~ChatRequest.fingerprint` is what the cache
and the in-flight map key on, so two requests that differ only in JSON spelling
(key order, whitespace, a ``stop`` given as a string or a list) share an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from xynergy.ai_routing.catalogue import Preference
from xynergy.ai_routing.config import AiSettings
from xynergy.ai_routing.providers.base import ChatMessage, ToolCall, Tools, Usage
from xynergy.ai_routing.providers.tokens import message_text
from xynergy.platform.exceptions import PayloadTooLarge, ValidationFailed

__all__ = ["Answer", "CachePolicy", "ChatRequest", "check_messages", "normalise_messages"]

_WHITESPACE_RUN = re.compile(r"[ \t]+")


def normalise_messages(
    messages: Sequence[tuple[str, str]], ai: AiSettings
) -> tuple[ChatMessage, ...]:
    """Validated messages: roles known, bounds from settings, text trimmed.

    Raises ValidationFailed (422) or PayloadTooLarge (413) with a clear message.
    """
    result: list[ChatMessage] = []
    for role, content in messages:
        # "developer" is OpenAI's newer name for the system role.
        role = "system" if role == "developer" else role
        if role not in ("system", "user", "assistant"):
            raise ValidationFailed(f"Unsupported message role {role!r}.")
        result.append(ChatMessage(role=role, content=content))  # type: ignore[arg-type]
    return check_messages(result, ai)


def check_messages(messages: Sequence[ChatMessage], ai: AiSettings) -> tuple[ChatMessage, ...]:
    """``messages`` within the configured bounds, their text trimmed.

    Tool-call arguments count towards the prompt's characters. Raises
    ValidationFailed (422) or PayloadTooLarge (413) with a clear message.
    """
    if not messages:
        raise ValidationFailed("At least one message is required.")
    if len(messages) > ai.messages_max:
        raise ValidationFailed(f"At most {ai.messages_max} messages are accepted.")
    total = sum(len(message_text(message)) for message in messages)
    result = tuple(replace(message, content=message.content.strip()) for message in messages)
    if total > ai.prompt_max_chars:
        raise PayloadTooLarge(
            f"The prompt has {total} characters; at most {ai.prompt_max_chars} are accepted."
        )
    if not any(message.role == "user" and message.content for message in result):
        raise ValidationFailed("At least one non-empty user message is required.")
    return result


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One AI request as the router sees it."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int
    task: str = "chat"
    model: str | None = None  # a catalogue name, or None to choose by preference
    preference: Preference = "balanced"
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    tools: Tools | None = None

    def fingerprint(self) -> list[object]:
        """What decides the answer: the cache and in-flight key parts.

        The task is left out (it labels usage, it does not change the answer);
        whitespace runs inside messages are collapsed. Tools, tool calls and tool
        results are added only when present, so requests without them keep the
        keys they always had.
        """
        parts: list[object] = [
            self.model or f"preference:{self.preference}",
            [_message_key(m) for m in self.messages],
            self.max_tokens,
            self.temperature,
            self.top_p,
            list(self.stop),
        ]
        if self.tools is not None:
            parts.append(["tools", *self.tools.fingerprint()])
        return parts


def _message_key(message: ChatMessage) -> tuple[object, ...]:
    key: tuple[object, ...] = (message.role, _WHITESPACE_RUN.sub(" ", message.content))
    if message.tool_calls:
        key += tuple((c.id, c.name, c.arguments) for c in message.tool_calls)
    if message.tool_call_id is not None:
        key += (message.tool_call_id,)
    return key


@dataclass(slots=True)
class Answer:
    """A completed answer, as cached and as returned."""

    id: str
    text: str
    finish_reason: str
    model: str
    provider: str
    input_tokens: int
    output_tokens: int
    cost_nanos: int
    created: int
    cached: bool = False
    deduplicated: bool = False
    latency_ms: int = field(default=0)
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def usage(self) -> Usage:
        return Usage(self.input_tokens, self.output_tokens)

    def to_cache_json(self) -> str:
        # Built by hand, not with dataclasses.asdict (a deep copy, ~1 % of a proxied
        # request): the same keys in field order, transient fields left out.
        data = {
            "id": self.id,
            "text": self.text,
            "finish_reason": self.finish_reason,
            "model": self.model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_nanos": self.cost_nanos,
            "created": self.created,
            "tool_calls": [asdict(call) for call in self.tool_calls],
        }
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_cache_json(cls, text: str) -> Answer:
        data = json.loads(text)
        calls = tuple(ToolCall(**call) for call in data.pop("tool_calls", ()))
        return cls(**data, tool_calls=calls, cached=True)


class CachePolicy:
    """How long an answer stays fresh: long, unless the prompt names a moment.

    The review's ``is_stable_prompt`` idea as configurable rules: a prompt that
    matches any of ``time_sensitive_patterns`` ("today", "latest", a year...) is
    cached for ``cache_volatile_ttl_seconds``, any other for the stable TTL.
    """

    def __init__(self, ai: AiSettings) -> None:
        self._volatile = [
            re.compile(pattern, re.IGNORECASE) for pattern in ai.time_sensitive_patterns
        ]
        self._stable_ttl = ai.cache_stable_ttl_seconds
        self._volatile_ttl = ai.cache_volatile_ttl_seconds

    def is_stable(self, request: ChatRequest) -> bool:
        return not any(
            pattern.search(message.content)
            for message in request.messages
            for pattern in self._volatile
        )

    def ttl(self, request: ChatRequest) -> float:
        return self._stable_ttl if self.is_stable(request) else self._volatile_ttl
