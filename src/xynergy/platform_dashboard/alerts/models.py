"""ORM models of alerts: rules (with their current state) and their history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["AlertEvent", "AlertRule"]

_TENANT_FK = "tenants.id"


class AlertRule(Base):
    """One condition watched every minute; ``state`` is ``ok`` or ``firing``."""

    __tablename__ = "alert_rules"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "enabled", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    # Platform-wide rules belong to the operator tenant and watch the whole platform.
    platform_wide: Mapped[bool] = mapped_column(Boolean, default=False)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float] = mapped_column(Float)
    period: Mapped[str | None] = mapped_column(String(16))  # spend: "day" | "month"
    window_minutes: Mapped[int] = mapped_column(Integer, default=5)
    target: Mapped[str | None] = mapped_column(String(255))  # service, namespace, breaker, disk
    webhook_url: Mapped[str | None] = mapped_column(String(8192))
    # HMAC key of the webhook signature; shown once when the rule is created.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="ok")
    state_since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_value: Mapped[float | None] = mapped_column(Float)
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AlertEvent(Base):
    """A transition of one rule: it fired, or it resolved."""

    __tablename__ = "alert_events"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "rule_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16))  # "firing" | "resolved"
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
