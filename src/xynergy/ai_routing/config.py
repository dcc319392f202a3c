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
        default=None, description="YAML or JSON model catalogue; None uses the built-in one."
    )

    # --- request bounds ---------------------------------------------------------
    prompt_max_chars: int = Field(default=100_000, ge=1, le=10_000_000)
    messages_max: int = Field(default=200, ge=1, le=10_000)
    max_tokens_default: int = Field(default=1_024, ge=1, le=1_000_000)
    max_tokens_limit: int = Field(default=8_192, ge=1, le=1_000_000)
    stop_sequences_max: int = Field(default=4, ge=0, le=16)
    stop_sequence_max_chars: int = Field(default=64, ge=1, le=1000)

    # --- cache ------------------------------------------------------------------
    cache_enabled: bool = True
    cache_stable_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    cache_volatile_ttl_seconds: float = Field(default=300, gt=0)
    time_sensitive_patterns: Annotated[tuple[str, ...], NoDecode] = DEFAULT_TIME_SENSITIVE_PATTERNS

    # --- in-flight dedup --------------------------------------------------------
    singleflight_max_entries: int = Field(default=10_000, ge=1, le=1_000_000)
    stream_buffer_max_events: int = Field(
        default=100_000, ge=16, le=10_000_000, description="Per shared stream, for late joiners."
    )

    request_memo_max_entries: int = Field(
        default=4_096, ge=0, le=1_000_000, description="Parsed bodies kept for cache hits."
    )
    request_memo_max_body_bytes: int = Field(default=4_096, ge=0, le=1_048_576)

    # --- routing ----------------------------------------------------------------
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Candidates tried per request, the first included."
    )

    # --- token limits, ledger ---------------------------------------------------
    tokens_per_minute: str = Field(
        default="200000/minute", description="Per key: input estimate plus max_tokens."
    )
    ledger_flush_seconds: float = Field(default=1.0, gt=0, le=300)
    ledger_batch_max: int = Field(default=1_000, ge=1, le=100_000)
    ledger_queue_max: int = Field(default=100_000, ge=1, le=10_000_000)
    budget_cache_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)

    # --- usage report -------------------------------------------------------------
    usage_max_days: int = Field(default=92, ge=1, le=3660)
    usage_max_rows: int = Field(default=5_000, ge=1, le=100_000)

    @field_validator("time_sensitive_patterns", mode="before")
    @classmethod
    def _parse_patterns(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(json.loads(value)) if value.strip().startswith("[") else (value,)
        return value
