"""Request and response schemas of the AI Assistant.

Hard caps here stop oversized input before any work; the configured bounds
(``AssistantSettings``, at or below these caps) are checked by the service and
published in the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from xynergy.ai_assistant.config import MESSAGE_HARD_MAX, TITLE_HARD_MAX
from xynergy.platform.schema_bounds import setting_bounds
from xynergy.platform.text import PlainText, RawText

__all__ = [
    "ActionOut",
    "ConversationCreate",
    "ConversationDetail",
    "ConversationMessageSend",
    "ConversationOut",
    "ConversationUpdate",
    "ExportFormat",
    "MessageOut",
    "MessageSend",
    "Role",
    "TurnOut",
    "Usage",
]

Role = Literal["user", "assistant", "tool", "summary"]
ExportFormat = Literal["json", "markdown"]
_MODEL_MAX = 100
_ID_PATTERN = r"^[0-9a-f]{32}$"

Title = Annotated[str, PlainText(max_length=TITLE_HARD_MAX)]
# A prompt for a model, stored and shown back: kept as sent (the chat page renders
# it as sanitised Markdown), but storable (no NUL).
MessageText = Annotated[str, RawText(max_length=MESSAGE_HARD_MAX, min_length=1)]
ModelName = Annotated[str, RawText(max_length=_MODEL_MAX, min_length=1)]
_MESSAGE_BOUND = setting_bounds(maxLength="assistant.message_max_chars")


class ConversationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title = Field(default="", description="Shown in the conversation list.")


class ConversationUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title


class ConversationOut(BaseModel):
    id: str
    title: str
    message_count: int = Field(description="User and assistant messages.")
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    cost_usd: str = Field(description="Exact decimal, US dollars.")


class MessageOut(BaseModel):
    id: str
    seq: int = Field(description="Position in the conversation.")
    role: Role
    content: str
    status: Literal["complete", "failed"]
    tool_calls: list[dict[str, Any]] | None = None
    summary_through_seq: int | None = Field(
        default=None, description="A summary's last summarised position."
    )
    model: str | None = None
    provider: str | None = None
    usage: Usage | None = None
    created_at: datetime


class ConversationDetail(ConversationOut):
    messages: list[MessageOut] = Field(description="One page, newest first.")
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next (older) page of messages; null on the last."
    )


class ConversationMessageSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: MessageText = Field(json_schema_extra=_MESSAGE_BOUND)
    stream: bool = Field(
        default=False, description="Answer as server-sent events (OpenAI-style chunks)."
    )
    model: ModelName | None = Field(
        default=None, description="A catalogue model; the configured default when absent."
    )


class MessageSend(ConversationMessageSend):
    conversation_id: str | None = Field(
        default=None,
        min_length=32,
        max_length=32,
        pattern=_ID_PATTERN,
        description="The conversation to continue; a new one when absent.",
    )


class TurnOut(BaseModel):
    """A finished turn: the stored user message and reply."""

    conversation_id: str
    user_message: MessageOut
    reply: MessageOut
    usage: Usage


ActionStatus = Literal["proposed", "rejected", "running", "succeeded", "failed"]


class ActionOut(BaseModel):
    """A side-effecting tool call the model proposed, and what became of it."""

    id: str = Field(description="The action's id (also the id of its tool message).")
    conversation_id: str
    tool: str
    inputs: dict[str, Any] = Field(description="The arguments the model chose.")
    estimated_cost_usd: str | None = Field(
        description="An upper bound of the AI cost of running it (exact decimal, US dollars), "
        "when known; null otherwise."
    )
    estimated_cost_basis: str | None = Field(
        default=None, description="How the estimate was made; null without one."
    )
    status: ActionStatus
    workflow_id: str | None = Field(description="The System Runtime run, once confirmed.")
    workflow_status: str | None = Field(description="The run's status when last read.")
    campaign_id: str | None = Field(
        description="The campaign a finished run made or approved, if any."
    )
    detail: str | None = Field(description="Why it failed, when it did.")
    content_id: str | None = Field(
        default=None, description="The content item a finished run created, if any."
    )
    result_summary: str | None = Field(
        default=None, description="What a finished run did, in a sentence; null until then."
    )
