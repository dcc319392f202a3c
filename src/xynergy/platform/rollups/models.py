"""The rollup tables: one row per replica, minute and series.

Core tables rather than mapped classes: the request table has a column per
latency bucket (36, generated from :mod:`.buckets`), and nothing reads these rows
as objects; the recorder inserts dicts and the series queries sum columns.

``minute`` is the UTC minute as an integer (seconds since the epoch // 60): time
buckets of any step are then integer arithmetic that PostgreSQL and SQLite
agree on, and the range scans read one integer index. Rows are never updated:
a replica inserts what it counted, other replicas insert theirs, reads sum.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, text

from xynergy.platform.db.base import Base
from xynergy.platform.rollups.buckets import BUCKET_COLUMNS

__all__ = [
    "AI_ROLLUPS",
    "CACHE_ROLLUPS",
    "MODEL_MAX_CHARS",
    "NAME_MAX_CHARS",
    "RATE_LIMIT_ROLLUPS",
    "REPLICA_MAX_CHARS",
    "REQUEST_ROLLUPS",
    "ROLLUP_TABLES",
    "ROUTE_MAX_CHARS",
]

REPLICA_MAX_CHARS = 64
NAME_MAX_CHARS = 64  # service slugs, HTTP methods, cache namespaces
ROUTE_MAX_CHARS = 255
MODEL_MAX_CHARS = 200

# BIGINT identities on PostgreSQL; SQLite only auto-assigns an INTEGER PRIMARY KEY
# (its integers are 64-bit anyway).
_ROW_ID = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", _ROW_ID, primary_key=True, autoincrement=True)


def _count(name: str) -> Column[int]:
    return Column(name, Integer, nullable=False, default=0)


def _total(name: str) -> Column[int]:
    return Column(name, BigInteger, nullable=False, default=0)


def _rollup(name: str, *columns: Column[int] | Column[str], by_tenant: bool = False) -> Table:
    """A rollup table: its id, minute and replica, then ``columns``; indexed by minute
    (and by tenant and minute where ``by_tenant``) for the range scans."""
    indexes = [Index(None, "minute")]
    if by_tenant:
        indexes.append(Index(None, "tenant_id", "minute"))
    return Table(
        name,
        Base.metadata,
        _id(),
        Column("minute", BigInteger, nullable=False),
        Column("replica_id", String(REPLICA_MAX_CHARS), nullable=False),
        *columns,
        *indexes,
    )


REQUEST_ROLLUPS = _rollup(
    "platform_request_rollups",
    Column("service", String(NAME_MAX_CHARS), nullable=False),
    Column("method", String(NAME_MAX_CHARS), nullable=False),
    Column("route", String(ROUTE_MAX_CHARS), nullable=False),
    _count("requests"),
    _count("errors_4xx"),
    _count("errors_5xx"),
    _count("rate_limited"),
    _total("latency_sum_us"),
    *(_count(name) for name in BUCKET_COLUMNS),
)

CACHE_ROLLUPS = _rollup(
    "platform_cache_rollups",
    Column("namespace", String(NAME_MAX_CHARS), nullable=False),
    _count("hits"),
    _count("misses"),
    # L1 entries dropped for room (past the bound, or shrunk under memory pressure).
    Column("evictions", Integer, nullable=False, default=0, server_default=text("0")),
)

AI_ROLLUPS = _rollup(
    "platform_ai_rollups",
    # Tenant-scoped: a tenant's rows go with it.
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("model", String(MODEL_MAX_CHARS), nullable=False),
    _count("requests"),
    _count("errors"),
    _count("cache_hits"),
    _total("input_tokens"),
    _total("output_tokens"),
    _total("cost_nanos"),
    by_tenant=True,
)

RATE_LIMIT_ROLLUPS = _rollup(
    "platform_rate_limit_rollups",
    Column("service", String(NAME_MAX_CHARS), nullable=False),
    # The route template the limit refused ("" outside a request), and the limit's
    # name: a route class (reads, ai_generate...) or a service's own budget.
    Column("route", String(ROUTE_MAX_CHARS), nullable=False),
    Column("rate_class", String(NAME_MAX_CHARS), nullable=False),
    # The refused key's tenant; null for public routes (counted per address).
    Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
    _count("rejections"),
    by_tenant=True,
)

ROLLUP_TABLES: tuple[Table, ...] = (REQUEST_ROLLUPS, CACHE_ROLLUPS, AI_ROLLUPS, RATE_LIMIT_ROLLUPS)
