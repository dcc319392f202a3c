"""ORM models of the ASO Engine. Every row carries its tenant; every query filters on it."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["ContentKeyword", "ContentPiece", "Keyword", "RankingObservation"]

_TENANT_FK = "tenants.id"


class ContentPiece(Base):
    __tablename__ = "aso_content"
    __table_args__ = (
        Index(None, "tenant_id", "status", "updated_at"),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "priority_rank", "created_at", "id"),
        Index(None, "tenant_id", "updated_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(1000))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    # Sortable form of priority (low=0 ... urgent=3): sorting by the label would
    # be alphabetical.
    priority_rank: Mapped[int] = mapped_column(Integer)
    target_keywords: Mapped[list[str]] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ContentKeyword(Base):
    """One target keyword of a content piece: the indexable form of target_keywords."""

    __tablename__ = "aso_content_keywords"
    __table_args__ = (Index(None, "tenant_id", "phrase"),)

    content_id: Mapped[str] = mapped_column(
        ForeignKey("aso_content.id", ondelete="CASCADE"), primary_key=True
    )
    phrase: Mapped[str] = mapped_column(String(1000), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))


class Keyword(Base):
    __tablename__ = "aso_keywords"
    __table_args__ = (
        UniqueConstraint("tenant_id", "phrase", "locale"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    phrase: Mapped[str] = mapped_column(String(1000))
    locale: Mapped[str] = mapped_column(String(16))
    tags: Mapped[list[str]] = mapped_column(JSON)
    target_url: Mapped[str | None] = mapped_column(String(8192))
    intent: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RankingObservation(Base):
    """A keyword's position on one engine and locale on one day (None: not ranked)."""

    __tablename__ = "aso_rankings"
    __table_args__ = (
        UniqueConstraint("keyword_id", "engine", "locale", "observed_on"),
        Index(None, "tenant_id", "keyword_id", "observed_on"),
        Index(None, "tenant_id", "observed_on"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    keyword_id: Mapped[str] = mapped_column(ForeignKey("aso_keywords.id", ondelete="CASCADE"))
    engine: Mapped[str] = mapped_column(String(32))
    locale: Mapped[str] = mapped_column(String(16))
    position: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(String(8192))
    observed_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
