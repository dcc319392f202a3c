"""ORM models of the System Runtime. DBOS keeps its own tables (its schema or file);
these hold what tenants see: definitions, runs and each step's progress."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xynergy.platform.db.base import Base, UTCDateTime, new_id, utcnow

__all__ = ["RunRecord", "RuntimeExecutor", "StepRecord", "WorkflowDefinition"]

_TENANT_FK = "tenants.id"


class WorkflowDefinition(Base):
    """One version of a tenant's definition; versions are immutable once stored."""

    __tablename__ = "runtime_definitions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version"),
        Index(None, "tenant_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by_key_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RunRecord(Base):
    """A run as tenants see it; ``workflow_id`` is its current DBOS workflow (a resume
    forks a new one), ``id`` never changes."""

    __tablename__ = "runtime_runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index(None, "tenant_id", "created_at", "id"),
        Index(None, "tenant_id", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey(_TENANT_FK, ondelete="CASCADE"))
    definition_name: Mapped[str] = mapped_column(String(80))
    definition_version: Mapped[int] = mapped_column(Integer)
    built_in: Mapped[bool] = mapped_column(default=False)
    # The definition as it was when the run started, and the run's input: a
    # recovered or resumed run replays exactly what was started.
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    workflow_id: Mapped[str] = mapped_column(String(80))
    resumes: Mapped[int] = mapped_column(Integer, default=0)
    # The acting identity: every step calls with these, after checking the key lives.
    key_id: Mapped[str] = mapped_column(String(32))
    key_tenant_id: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StepRecord(Base):
    """One step of one run: its state, attempts, timings, error and output.

    The output is kept so later steps map from it and so a resumed run never
    calls a completed step again, whatever DBOS step it lands on.
    """

    __tablename__ = "runtime_run_steps"

    run_id: Mapped[str] = mapped_column(
        ForeignKey("runtime_runs.id", ondelete="CASCADE"), primary_key=True
    )
    step_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dbos_step_id: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    output: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RuntimeExecutor(Base):
    """A replica's DBOS executor id and when it last said it was alive (PostgreSQL):
    the runs of one silent for the grace period are taken over (engine/takeover.py)."""

    __tablename__ = "runtime_executors"

    executor_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    application_version: Mapped[str] = mapped_column(String(64))
    # Written with the database's clock, so the replicas' clocks need not agree.
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime())
