"""AI Routing Engine settings, prefix ``XYNERGY_AI_`` (e.g. ``XYNERGY_AI_CATALOGUE``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

__all__ = ["DEFAULT_TIME_SENSITIVE_PATTERNS", "AiSettings"]

# Words that make an answer go stale: a prompt containing one is cached briefly.
DEFAULT_TIME_SENSITIVE_PATTERNS: tuple[str, ...] = (
    r"\b(today|tonight|tomorrow|yesterday|now|currently|current|latest|recent|recently)\b",
    r"\b(this|next|last) (week|month|quarter|year)\b",
    r"\b(news|breaking|trending|live|price|prices|stock|weather|score|scores)\b",
    r"\b(19|20)\d{2}\b",
)


class AiSettings(BaseSettings):
    """Bounds, TTLs and defaults of the AI Routing Engine."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_AI_", extra="ignore", frozen=True)

    catalogue: Path | None = Field(
        default=None,
        description="YAML or JSON model catalogue file; unset: the built-in one. Reloaded with "
        "the provider keys (SIGHUP, POST /admin/secrets/reload, or when it changes).",
    )
    catalogue_max_bytes: int = Field(
        default=4_194_304,
        ge=1024,
        le=268_435_456,
        description="Largest catalogue file read on a reload, in bytes; a larger one is refused.",
    )

    # --- request bounds ---------------------------------------------------------
    prompt_max_chars: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Longest prompt, in characters (all messages of a chat request together).",
    )
    messages_max: int = Field(
        default=200, ge=1, le=10_000, description="Most messages in one chat request."
    )
    max_tokens_default: int = Field(
        default=1_024, ge=1, le=1_000_000, description="max_tokens of a request that names none."
    )
    max_tokens_limit: int = Field(
        default=8_192,
        ge=1,
        le=1_000_000,
        description="Largest max_tokens a request may ask for; more is refused (422).",
    )
    stop_sequences_max: int = Field(
        default=4, ge=0, le=16, description="Most stop sequences in one request."
    )
    stop_sequence_max_chars: int = Field(
        default=64, ge=1, le=1000, description="Longest stop sequence, in characters."
    )
    tools_max: int = Field(
        default=128, ge=0, le=1000, description="Most tools (functions) in one chat request."
    )
    tools_max_chars: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Longest tool definitions of one request (names, descriptions and JSON "
        "schemas together), in characters.",
    )

    # --- cache ------------------------------------------------------------------
    cache_enabled: bool = Field(
        default=True,
        description="Answer identical requests from the response cache (false: every request goes "
        "to a provider).",
    )
    cache_stable_ttl_seconds: float = Field(
        default=24 * 3600,
        gt=0,
        description="How long an answer to a prompt without time-sensitive words is cached.",
    )
    cache_volatile_ttl_seconds: float = Field(
        default=300,
        gt=0,
        description="How long an answer to a time-sensitive prompt is cached (see "
        "time_sensitive_patterns).",
    )
    time_sensitive_patterns: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_TIME_SENSITIVE_PATTERNS,
        description="Regular expressions (case-insensitive) that mark a prompt time-sensitive; JSON"
        " list, or one pattern.",
    )

    # --- in-flight dedup --------------------------------------------------------
    singleflight_max_entries: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Identical requests in flight shared as one provider call, at most this many at"
        " once.",
    )
    stream_buffer_max_events: int = Field(
        default=100_000,
        ge=16,
        le=10_000_000,
        description="Events buffered per shared stream, for late joiners.",
    )
    shared_dedup_enabled: bool = Field(
        default=True,
        description="With Redis configured, identical requests in flight on different replicas "
        "share one provider call too (a Redis lock per request key; see docs/caching.md). False, "
        "or no Redis: shared within each process only.",
    )
    shared_dedup_lock_ttl_seconds: float = Field(
        default=10.0,
        ge=0.1,
        le=300,
        description="TTL of the Redis lock of a shared call, renewed every third of it while the "
        "call runs: a crashed replica holds a request key no longer than this. Also how long its "
        "outcome stays readable for the other replicas.",
    )
    shared_dedup_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Longest a request waits for an identical call on another replica; then it "
        "calls the provider itself (counted in xynergy_ai_dedup_wait_timeouts).",
    )

    request_memo_max_entries: int = Field(
        default=4_096, ge=0, le=1_000_000, description="Parsed request bodies kept for cache hits."
    )
    request_memo_max_body_bytes: int = Field(
        default=4_096,
        ge=0,
        le=1_048_576,
        description="Largest request body kept parsed for cache hits, in bytes.",
    )

    # --- routing ----------------------------------------------------------------
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Candidates tried per request, the first included."
    )

    # --- token limits, ledger ---------------------------------------------------
    tokens_per_minute: str = Field(
        default="200000/minute",
        description="Token rate limit per key (N/period): input estimate plus max_tokens.",
    )
    ledger_flush_seconds: float = Field(
        default=1.0,
        gt=0,
        le=300,
        description="How often queued usage events are written to the ledger.",
    )
    ledger_batch_max: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Usage events per ledger insert; a full batch is written at once.",
    )
    ledger_queue_max: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Usage events queued for the ledger; beyond this new events are dropped and "
        "counted.",
    )
    budget_cache_ttl_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a tenant's budget limits are cached; changing a budget invalidates "
        "them.",
    )

    # --- usage report -------------------------------------------------------------
    usage_max_days: int = Field(
        default=92, ge=1, le=3660, description="Longest window of GET /api/usage, in days."
    )
    usage_max_rows: int = Field(
        default=5_000,
        ge=1,
        le=100_000,
        description="Most (day, model, task) rows in a usage report; more sets truncated.",
    )

    # --- spend report -------------------------------------------------------------
    spend_max_months: int = Field(
        default=24,
        ge=1,
        le=120,
        description="Months GET /api/spend reaches back, the current one included.",
    )
    spend_top_groups: int = Field(
        default=20,
        ge=1,
        le=500,
        description="Keys, models, tasks or tenants named in a spend report; the rest are "
        "summed as other.",
    )
    spend_budgets_max: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Most month budgets (the tenant's and its keys') a spend report compares.",
    )

    @field_validator("time_sensitive_patterns", mode="before")
    @classmethod
    def _parse_patterns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(json.loads(value)) if value.strip().startswith("[") else (value,)
        return value
