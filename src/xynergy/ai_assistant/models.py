"""ORM models of the AI Assistant. Every row carries its tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["Conversation", "Message"]


class Conversation(Base):
    """A conversation, owned by the API key that created it."""

    __tablename__ = "assistant_conversations"
    __table_args__ = (
        Index(None, "tenant_id", "key_id", "created_at", "id"),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "last_activity_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(1000), default="")
    # User and assistant messages (the bound); summaries are not counted.
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    # The next message's position: every row, summaries included, takes one.
    next_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Message(Base):
    """One message: ``user``, ``assistant``, ``tool`` (a tool result) or ``summary``.

    ``tool_calls`` holds an assistant message's tool calls (OpenAI's shape) once
    the assistant has tools; a summary row says up to which ``seq`` it covers.
    """

    __tablename__ = "assistant_messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # The latest summary of a conversation, found without reading its turns.
        Index(None, "conversation_id", "role", "seq"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("assistant_conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # "complete", or "failed" (the model call failed; content says why).
    status: Mapped[str] = mapped_column(String(16), default="complete")
    summary_through_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[str | None] = mapped_column(String(100), nullable=True)
    provider: Mapped[str | None] = mapped_column(String(100), nullable=True)
    input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cost_usd: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
