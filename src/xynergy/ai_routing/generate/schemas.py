"""The platform's generation request and answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from xynergy.ai_routing.catalogue import Preference
from xynergy.ai_routing.text_types import ModelName, Prompt

__all__ = ["GenerateRequest", "GenerateResponse", "MessageIn", "UsageOut"]

Task = Literal[
    "chat",
    "content",
    "keywords",
    "campaign",
    "analysis",
    "summary",
    "classification",
    "assistant",
    # The AI Assistant's summaries of older turns, apart from its turns in the ledger.
    "assistant-summary",
    "other",
]
_MAX_MESSAGES = 10_000


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: Prompt


class GenerateRequest(BaseModel):
    """Either ``prompt`` (with an optional ``system``) or ``messages``."""

    # Declared as the validator below enforces (null counts as absent, so the
    # schema leaves it out): ``prompt`` (with an optional ``system``) or ``messages``.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["prompt"], "not": {"required": ["messages"]}},
                {"required": ["messages"], "not": {"required": ["prompt"]}},
            ],
            "dependentSchemas": {"system": {"not": {"required": ["messages"]}}},
        },
    )

    task: Task = "other"
    prompt: Prompt | SkipJsonSchema[None] = None
    system: Prompt | SkipJsonSchema[None] = None
    messages: (
        Annotated[list[MessageIn], Field(min_length=1, max_length=_MAX_MESSAGES)]
        | SkipJsonSchema[None]
    ) = None
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    preference: Preference = "balanced"
    model: ModelName | None = None

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> GenerateRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' and 'messages'")
        if self.system is not None and self.messages is not None:
            raise ValueError("'system' goes with 'prompt'; put it in 'messages' instead")
        return self

    def as_pairs(self) -> list[tuple[str, str]]:
        if self.messages is not None:
            return [(m.role, m.content) for m in self.messages]
        pairs = [("system", self.system)] if self.system else []
        return [*pairs, ("user", self.prompt or "")]


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: str = Field(description="Exact decimal, US dollars.")


class GenerateResponse(BaseModel):
    id: str
    task: Task
    text: str
    model: str
    provider: str = Field(description='"offline" for the built-in deterministic provider.')
    finish_reason: str
    usage: UsageOut
    cached: bool
    deduplicated: bool
    latency_ms: int
