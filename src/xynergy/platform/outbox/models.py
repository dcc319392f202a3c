"""The platform's transactional outbox table: one row per signed webhook to send."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["OutboxMessage"]


class OutboxMessage(Base):
    """A webhook notification, committed with the change it reports and delivered later.

    The row names its destination only indirectly (``source_kind`` + ``source_id``,
    e.g. an intake form or an alert channel): the resolver registered for the kind
    looks the URL and signing secrets up at delivery time, so a URL changed or a
    secret rotated after enqueueing still applies.
    """

    __tablename__ = "platform_outbox"
    __table_args__ = (
        Index(None, "delivered_at", "next_attempt_at"),
        Index(None, "source_kind", "source_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source_kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON bytes that are signed and sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
