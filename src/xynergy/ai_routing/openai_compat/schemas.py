"""The OpenAI chat completion request, as far as the gateway honours it.

Parameters that would change the answer but that the gateway cannot honour
(``n`` > 1, the legacy ``functions``, response formats, images) are refused with a
422 rather than silently ignored; parameters that only label the request (``user``)
are accepted. Tools follow OpenAI's format: ``tools`` (functions with JSON Schema
parameters), ``tool_choice``, ``parallel_tool_calls``, assistant ``tool_calls``
and ``tool`` messages; the conversation rules are checked in :mod:`.tools`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from xynergy.ai_routing.text_types import ModelName, Prompt
from xynergy.platform.json_value import JsonObject
from xynergy.platform.text import RawText

__all__ = [
    "ChatCompletionRequest",
    "ChatMessageIn",
    "FunctionDef",
    "NamedToolChoice",
    "StreamOptions",
    "TextPart",
    "ToolCallIn",
    "ToolDef",
]

# Hard caps for parsing; the configured (smaller) bounds are applied afterwards.
_MAX_MESSAGES = 10_000
_MAX_PARTS = 100
_MAX_STOP = 16
_MAX_STOP_CHARS = 1000
_MAX_NAME_CHARS = 64
_MAX_USER_CHARS = 256
_MAX_TOOLS = 1_000
_MAX_TOOL_CALLS = 128
_MAX_DESCRIPTION_CHARS = 100_000
_MAX_TOOL_CALL_ID_CHARS = 128
_UNSUPPORTED = ("functions", "function_call", "response_format", "logprobs")
_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
StopText = Annotated[str, RawText(max_length=_MAX_STOP_CHARS, allow_nul=True)]


def _tool_name(value: str) -> str:
    if not _TOOL_NAME.fullmatch(value):
        raise ValueError("a function name is 1 to 64 letters, digits, '_' or '-'")
    return value


# What OpenAI and Anthropic both accept as a function name.
ToolName = Annotated[str, RawText(max_length=64, min_length=1), AfterValidator(_tool_name)]
ToolCallId = Annotated[str, RawText(max_length=_MAX_TOOL_CALL_ID_CHARS, min_length=1)]


class FunctionDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: ToolName
    description: Annotated[str, RawText(max_length=_MAX_DESCRIPTION_CHARS)] = ""
    parameters: JsonObject | None = Field(
        default=None, description="JSON Schema of the arguments (an object schema)."
    )
    strict: bool | None = None


class ToolDef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    function: FunctionDef


class FunctionName(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: ToolName


class NamedToolChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["function"]
    function: FunctionName


class FunctionCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: ToolName
    arguments: Prompt = Field(description="The arguments as JSON text.")


class ToolCallIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: ToolCallId
    type: Literal["function"] = "function"
    function: FunctionCallIn


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["text"]
    text: Prompt


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Prompt | Annotated[list[TextPart], Field(max_length=_MAX_PARTS)] | None = None
    name: Annotated[str, RawText(max_length=_MAX_NAME_CHARS)] | None = None
    tool_calls: Annotated[list[ToolCallIn], Field(max_length=_MAX_TOOL_CALLS)] | None = None
    tool_call_id: ToolCallId | None = None

    @model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> ChatMessageIn:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages, and only they, carry a tool_call_id")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content may be null only in an assistant message with tool_calls")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
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
    tools: Annotated[list[ToolDef], Field(max_length=_MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None

    @model_validator(mode="after")
    def _refuse_unsupported(self) -> ChatCompletionRequest:
        extra: dict[str, Any] | None = self.model_extra
        if not extra:  # the usual request: nothing beyond the declared fields
            return self
        used = sorted(name for name in _UNSUPPORTED if extra.get(name) not in (None, [], {}))
        if used:
            raise ValueError(f"unsupported parameter(s): {', '.join(used)}")
        return self

    def stop_sequences(self) -> tuple[str, ...]:
        if self.stop is None:
            return ()
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
