"""ASO Engine settings, prefix ``XYNERGY_ASO_`` (e.g. ``XYNERGY_ASO_IMPORT_MAX_ROWS``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AsoSettings"]


class AsoSettings(BaseSettings):
    """Bounds and TTLs of the ASO Engine."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_ASO_", extra="ignore", frozen=True)

    content_title_max_chars: int = Field(
        default=300, ge=1, le=1000, description="Longest content title, in characters."
    )
    content_body_max_chars: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Longest content body, in characters."
    )
    content_keywords_max: int = Field(
        default=50, ge=1, le=1000, description="Most distinct target keywords on one content piece."
    )
    keyword_phrase_max_chars: int = Field(
        default=200, ge=1, le=1000, description="Longest keyword phrase, in characters."
    )
    keyword_tags_max: int = Field(
        default=20, ge=0, le=200, description="Most tags on one tracked keyword."
    )
    url_max_chars: int = Field(
        default=2048,
        ge=16,
        le=8192,
        description="Longest target URL of a keyword or URL of a ranking observation, in "
        "characters.",
    )
    import_max_rows: int = Field(
        default=200_000,
        ge=1,
        le=10_000_000,
        description="Most rows in one bulk keyword import; a larger file is refused and nothing is "
        "written.",
    )
    import_max_bytes: int = Field(
        default=64 * 1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest bulk-import file, in bytes; a larger one is refused (413) and nothing "
        "is written.",
    )
    # A best-effort batch is one transaction: the write lock is held, and the event
    # loop busy binding parameters, for one batch. 500 rather than 2,000 halved other
    # tenants' write and read latency during 3 concurrent imports, for ~10 % more
    # import time (bench/sqlite_contention.py).
    import_batch_rows: int = Field(
        default=500,
        ge=1,
        le=100_000,
        description="Rows per transaction of a best_effort bulk import (smaller batches let other "
        "writers in sooner).",
    )
    import_max_reported_rejections: int = Field(
        default=1_000,
        ge=0,
        le=100_000,
        description="Rejected rows an import reports by line and reason; the rest are only counted.",
    )
    import_final_insert_wait_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="SQLite, all or nothing: how long the one final insert waits for the "
        "write lock (another import's final insert) before 503; other writes keep "
        "XYNERGY_SQLITE_BUSY_TIMEOUT_MS.",
    )
    # Each batch binds one parameter per distinct keyword id; drivers cap a
    # statement at ~32k parameters.
    rankings_batch_max: int = Field(
        default=1_000,
        ge=1,
        le=10_000,
        description="Most ranking observations in one POST /api/rankings.",
    )
    trending_windows_days: tuple[int, ...] = Field(
        default=(7, 30),
        description="Windows (days) GET /api/keywords/trending accepts as ?window=; JSON list.",
    )
    trending_warm_tenants_max: int = Field(
        default=200,
        ge=0,
        le=100_000,
        description="Most tenants whose trending answers are computed ahead when the cache is "
        "warmed (at start-up and on the runtime's warming schedule); 0: none.",
    )
    trending_max_results: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Most keywords a trending answer holds (also the largest ?limit=).",
    )
    trending_cache_ttl_seconds: float = Field(
        default=6 * 3600,
        gt=0,
        description="How long a trending answer is cached (namespace trending); new rankings "
        "invalidate it.",
    )
    list_cache_ttl_seconds: float = Field(
        default=60,
        gt=0,
        description="How long content list pages are cached (namespace content); writes invalidate "
        "them.",
    )
