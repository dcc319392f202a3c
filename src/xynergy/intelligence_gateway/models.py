"""ORM models of the Intelligence Gateway. Every row carries its tenant.

Webhook notifications live in the platform's outbox (``platform_outbox``, source
kind ``intake-form``), since migration 0016 moved them out of ``intake_outbox``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["IntakeForm", "Submission"]

_TENANT_FK = "tenants.id"


class IntakeForm(Base):
    """A form a tenant embeds on its site; ``public_id`` is what the page posts to."""

    __tablename__ = "intake_forms"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    public_id: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "beta" | "contact"
    name: Mapped[str] = mapped_column(String(1000))
    allowed_origins: Mapped[list[str]] = mapped_column(JSON)
    webhook_url: Mapped[str | None] = mapped_column(String(8192))
    # HMAC key for the webhook signature; shown once when the form is created.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    # The secret a rotation replaced: it signs beside the new one until it expires,
    # so receivers can switch over without refusing a delivery. Never shown.
    previous_webhook_secret: Mapped[str | None] = mapped_column(String(128))
    previous_webhook_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Submission(Base):
    """One beta application or contact message, spam included (flagged, never dropped)."""

    __tablename__ = "intake_submissions"
    __table_args__ = (
        # One beta application per e-mail per form; NULL (contact forms) never collides.
        UniqueConstraint("form_id", "dedupe_key"),
        # A retried request with the same key creates nothing new.
        UniqueConstraint("form_id", "idempotency_key"),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "status", "created_at", "id"),
        Index(None, "tenant_id", "kind", "created_at", "id"),
        Index(None, "tenant_id", "created_day"),
        Index(None, "tenant_id", "source", "created_at"),
        Index(None, "form_id", "content_hash", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    form_id: Mapped[str] = mapped_column(ForeignKey("intake_forms.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # new|reviewed|accepted|rejected|spam
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(1000))
    company: Mapped[str | None] = mapped_column(String(1000))
    website: Mapped[str | None] = mapped_column(String(8192))
    subject: Mapped[str | None] = mapped_column(String(1000))
    body: Mapped[str] = mapped_column(Text)  # the use case (beta) or the message (contact)
    source: Mapped[str | None] = mapped_column(String(2000))
    utm: Mapped[dict[str, str]] = mapped_column(JSON)
    spam_reasons: Mapped[list[str]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))
    client_ip_hash: Mapped[str] = mapped_column(String(64))
    dedupe_key: Mapped[str | None] = mapped_column(String(320))
    idempotency_key: Mapped[str | None] = mapped_column(String(1000))
    created_day: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
