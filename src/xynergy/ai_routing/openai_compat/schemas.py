"""The OpenAI chat completion request, as far as the gateway honours it.

Parameters that would change the answer but that the gateway cannot honour
(``n`` > 1, tools, function calling, images) are refused with a 422 rather than
silently ignored; parameters that only label the request (``user``) are accepted.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xynergy.ai_routing.text_types import ModelName, Prompt
from xynergy.platform.text import RawText

__all__ = ["ChatCompletionRequest", "ChatMessageIn", "StreamOptions", "TextPart"]

# Hard caps for parsing; the configured (smaller) bounds are applied afterwards.
_MAX_MESSAGES = 10_000
_MAX_PARTS = 100
_MAX_STOP = 16
_MAX_STOP_CHARS = 1000
_MAX_NAME_CHARS = 64
_MAX_USER_CHARS = 256
_UNSUPPORTED = ("tools", "tool_choice", "functions", "function_call", "response_format", "logprobs")
StopText = Annotated[str, RawText(max_length=_MAX_STOP_CHARS, allow_nul=True)]


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: Prompt


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: Prompt | Annotated[list[TextPart], Field(max_length=_MAX_PARTS)]
    name: Annotated[str, RawText(max_length=_MAX_NAME_CHARS)] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: ModelName
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=_MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: StopText | Annotated[list[StopText], Field(max_length=_MAX_STOP)] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request.")
    user: Annotated[str, RawText(max_length=_MAX_USER_CHARS)] | None = None

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ChatCompletionRequest:
        extra: dict[str, Any] = self.model_extra or {}
        used = sorted(name for name in _UNSUPPORTED if extra.get(name) not in (None, [], {}))
        if used:
            raise ValueError(f"unsupported parameter(s): {', '.join(used)}")
        return self

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
