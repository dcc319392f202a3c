"""ORM model of browser sessions: one row per signed-in browser, until it expires."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, utcnow

__all__ = ["WebSession"]


class WebSession(Base):
    """A browser's session, made by exchanging an API key once (``POST /session``).

    Only hashes are stored: ``token_hash`` of the cookie's random token, and
    ``key_hash`` of the key it stands for (what ``api_keys`` stores), through which
    every request re-checks the key, so a revoked, expired or rotated key ends its
    sessions at once. The key itself is never stored.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (
        # The per-key bound drops a key's oldest sessions.
        Index(None, "key_id", "created_at"),
        # The maintenance job deletes expired rows, oldest first.
        Index(None, "expires_at"),
    )

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32))
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
