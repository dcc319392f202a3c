"""ORM model of the Idempotency-Key layer: one row per (tenant, key) while it lives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["IDEMPOTENCY_KEY_MAX_CHARS", "IdempotencyRecord", "RecordState"]

# The header's hard bound (and the column's width); see idempotency.py.
IDEMPOTENCY_KEY_MAX_CHARS = 255


class RecordState:
    """The values of ``IdempotencyRecord.state``."""

    PENDING = "pending"
    DONE = "done"


class IdempotencyRecord(Base):
    """A write request's outcome under its ``Idempotency-Key``, per acting tenant.

    ``pending`` while the first request runs (``owner`` names that run, so only it
    completes or releases the row; ``locked_until`` is when another request may take
    over a run that crashed); ``done`` once its response is stored. No foreign key
    to ``tenants``: the row is a short-lived cache, and a key lookup per insert on
    every write would cost more than a few orphan rows until they expire.
    """

    __tablename__ = "platform_idempotency_records"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index(None, "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_CHARS))
    # sha256 hex of the request; null while a streamed upload is still being read.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(8))
    owner: Mapped[str] = mapped_column(String(32))
    locked_until: Mapped[datetime] = mapped_column(UTCDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    # Null on a done row whose body was larger than idempotency_max_response_bytes.
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
