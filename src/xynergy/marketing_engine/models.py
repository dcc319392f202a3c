"""ORM models of the Marketing Engine. Every row carries its tenant."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["Campaign", "CampaignStep", "CampaignTemplate"]

_TENANT_FK = "tenants.id"


class CampaignTemplate(Base):
    """A tenant's own template for a business type and industry; every change is a new version."""

    __tablename__ = "marketing_templates"
    __table_args__ = (
        UniqueConstraint("tenant_id", "business_type", "industry", "version"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    business_type: Mapped[str] = mapped_column(String(100))
    industry: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # "custom" | "ai"
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Campaign(Base):
    """A generated campaign and its life cycle: draft → approved → active → completed/archived."""

    __tablename__ = "marketing_campaigns"
    __table_args__ = (
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(1000))
    business_type: Mapped[str] = mapped_column(String(100))
    industry: Mapped[str] = mapped_column(String(100))
    goals: Mapped[list[str]] = mapped_column(JSON)
    channels: Mapped[list[str]] = mapped_column(JSON)
    audience: Mapped[str] = mapped_column(Text)
    tone: Mapped[str] = mapped_column(String(100))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    budget: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    request_hash: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column(JSON)
    estimated_reach: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CampaignStep(Base):
    """One step's output of a campaign's generation (template, personalisation, ...)."""

    __tablename__ = "marketing_campaign_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(
        ForeignKey("marketing_campaigns.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(64))
    output: Mapped[dict[str, Any]] = mapped_column(JSON)
    reused: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
