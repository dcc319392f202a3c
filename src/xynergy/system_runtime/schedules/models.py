"""The tenant's view of its schedules; DBOS keeps the firing side (its schedule rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["ScheduleRecord"]


class ScheduleRecord(Base):
    """One schedule: which definition it starts, when, with what input, as whom.

    ``status`` is ``active``, ``paused`` (on request) or ``stopped`` (its key died:
    ``stopped_reason`` says why). Every fire re-reads this row, so a pause, a delete
    or a revoked key takes effect at the next tick on every replica.
    """

    __tablename__ = "runtime_schedules"
    __table_args__ = (Index(None, "tenant_id", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    definition_name: Mapped[str] = mapped_column(String(80))
    # None: the latest version at each fire.
    definition_version: Mapped[int | None] = mapped_column(Integer)
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    stopped_reason: Mapped[str | None] = mapped_column(Text)
    # The acting identity: the key that created the schedule, as for a run.
    key_id: Mapped[str] = mapped_column(String(32))
    key_tenant_id: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    fires: Mapped[int] = mapped_column(Integer, default=0)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_run_id: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
