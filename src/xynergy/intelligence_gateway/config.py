"""Intelligence Gateway settings, prefix ``XYNERGY_INTAKE_`` (e.g. ``XYNERGY_INTAKE_RATE_PER_IP``)."""

from __future__ import annotations

from typing import Any

from limits import parse as parse_limit
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from xynergy.platform.config import Settings
from xynergy.platform.secrets.source import secret_fields_from_files

__all__ = ["IntakeSettings"]


class IntakeSettings(BaseSettings):
    """Bounds, spam rules and limits of the public intake."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_INTAKE_", extra="ignore", frozen=True)

    # --- forms ------------------------------------------------------------------
    form_name_max_chars: int = Field(
        default=200, ge=1, le=1000, description="Longest form name, in characters."
    )
    form_origins_max: int = Field(
        default=20, ge=1, le=200, description="Most allowed origins on one form."
    )
    webhook_url_max_chars: int = Field(
        default=2048, ge=16, le=8192, description="Longest form webhook URL, in characters."
    )

    # --- submission fields --------------------------------------------------------
    name_max_chars: int = Field(
        default=200, ge=1, le=1000, description="Longest submitter name, in characters."
    )
    email_max_chars: int = Field(
        default=254, ge=6, le=320, description="Longest email address, in characters."
    )
    company_max_chars: int = Field(
        default=200, ge=1, le=1000, description="Longest company name, in characters."
    )
    website_max_chars: int = Field(
        default=2048, ge=16, le=8192, description="Longest website URL, in characters."
    )
    subject_max_chars: int = Field(
        default=200, ge=1, le=1000, description="Longest contact subject, in characters."
    )
    use_case_min_chars: int = Field(
        default=10,
        ge=0,
        le=1000,
        description="Shortest use case a beta application may give, in characters.",
    )
    use_case_max_chars: int = Field(
        default=2_000,
        ge=1,
        le=100_000,
        description="Longest use case of a beta application, in characters.",
    )
    message_min_chars: int = Field(
        default=1, ge=0, le=1000, description="Shortest contact message, in characters."
    )
    message_max_chars: int = Field(
        default=5_000, ge=1, le=100_000, description="Longest contact message, in characters."
    )
    tracking_max_chars: int = Field(
        default=200,
        ge=1,
        le=2000,
        description="Longest source and utm_* field of a submission, in characters.",
    )
    idempotency_key_max_chars: int = Field(
        default=128,
        ge=8,
        le=1000,
        description="Longest Idempotency-Key header of a public submission.",
    )

    # --- spam resistance ------------------------------------------------------------
    form_token_secret: SecretStr | None = Field(
        default=None,
        description="Signs form tokens; unset: derived from the internal token secret. Or a "
        "file: XYNERGY_INTAKE_FORM_TOKEN_SECRET_FILE.",
    )
    form_token_min_fill_seconds: float = Field(
        default=3.0,
        ge=0,
        le=3600,
        description="A submission sent sooner than this after its form token was issued counts as "
        "spam (filled by a bot).",
    )
    form_token_max_age_seconds: int = Field(
        default=86_400, ge=60, le=30 * 86_400, description="How long a form token stays valid."
    )
    spam_max_links: int = Field(
        default=2,
        ge=0,
        le=100,
        description="A submission with more links than this counts as spam.",
    )
    spam_repeat_threshold: int = Field(
        default=3, ge=1, le=1000, description="Same text to one form this often in the window."
    )
    spam_repeat_window_seconds: int = Field(
        default=3600,
        ge=60,
        le=30 * 86_400,
        description="Window in which repeats of the same text to one form are counted (see "
        "spam_repeat_threshold).",
    )
    rate_per_ip: str = Field(
        default="5/minute",
        description="Submission rate limit per client IP and form kind (N/period).",
    )
    rate_per_form: str = Field(
        default="120/minute",
        description="Submission rate limit per form, all clients together (N/period).",
    )

    # --- admin side -----------------------------------------------------------------
    stats_cache_ttl_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="How long GET /api/stats answers are cached."
    )
    stats_max_days: int = Field(
        default=366, ge=1, le=3660, description="Longest window of GET /api/stats, in days."
    )
    export_max_rows: int = Field(
        default=1_000_000,
        ge=1,
        le=100_000_000,
        description="Most rows in one CSV export of submissions.",
    )
    export_batch_rows: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Rows read per query while a CSV export streams.",
    )

    # --- webhooks (delivery timing lives in the platform: XYNERGY_OUTBOX_*) ----------
    webhook_secret_grace_seconds: float = Field(
        default=86_400.0,
        ge=0,
        le=30 * 86_400,
        description="After a form's webhook secret is rotated, how long the previous secret keeps "
        "signing deliveries beside the new one (receivers switch over meanwhile); 0: it stops at "
        "once.",
    )

    @model_validator(mode="before")
    @classmethod
    def _secrets_from_files(cls, data: Any) -> Any:
        # XYNERGY_INTAKE_<NAME>_FILE, bounded as the platform's secret files are.
        bound = Settings.model_fields["secret_file_max_bytes"].default
        return secret_fields_from_files(cls, data, env_prefix="XYNERGY_INTAKE_", max_bytes=bound)

    @field_validator("rate_per_ip", "rate_per_form")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse_limit(value)
        return value
