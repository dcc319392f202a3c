"""Intelligence Gateway settings, prefix ``XYNERGY_INTAKE_`` (e.g. ``XYNERGY_INTAKE_RATE_PER_IP``)."""

from __future__ import annotations

from limits import parse as parse_limit
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IntakeSettings"]


class IntakeSettings(BaseSettings):
    """Bounds, spam rules, limits and outbox timing of the public intake."""

    model_config = SettingsConfigDict(env_prefix="XYNERGY_INTAKE_", extra="ignore", frozen=True)

    # --- forms ------------------------------------------------------------------
    form_name_max_chars: int = Field(default=200, ge=1, le=1000)
    form_origins_max: int = Field(default=20, ge=1, le=200)
    webhook_url_max_chars: int = Field(default=2048, ge=16, le=8192)

    # --- submission fields --------------------------------------------------------
    name_max_chars: int = Field(default=200, ge=1, le=1000)
    email_max_chars: int = Field(default=254, ge=6, le=320)
    company_max_chars: int = Field(default=200, ge=1, le=1000)
    website_max_chars: int = Field(default=2048, ge=16, le=8192)
    subject_max_chars: int = Field(default=200, ge=1, le=1000)
    use_case_min_chars: int = Field(default=10, ge=0, le=1000)
    use_case_max_chars: int = Field(default=2_000, ge=1, le=100_000)
    message_min_chars: int = Field(default=1, ge=0, le=1000)
    message_max_chars: int = Field(default=5_000, ge=1, le=100_000)
    tracking_max_chars: int = Field(
        default=200, ge=1, le=2000, description="source and each utm_* field."
    )
    idempotency_key_max_chars: int = Field(default=128, ge=8, le=1000)

    # --- spam resistance ------------------------------------------------------------
    form_token_secret: SecretStr | None = Field(
        default=None, description="Signs form tokens; None derives one from the internal secret."
    )
    form_token_min_fill_seconds: float = Field(default=3.0, ge=0, le=3600)
    form_token_max_age_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    spam_max_links: int = Field(default=2, ge=0, le=100)
    spam_repeat_threshold: int = Field(
        default=3, ge=1, le=1000, description="Same text to one form this often in the window."
    )
    spam_repeat_window_seconds: int = Field(default=3600, ge=60, le=30 * 86_400)
    rate_per_ip: str = Field(default="5/minute", description="Per client IP, per form kind.")
    rate_per_form: str = Field(default="120/minute", description="Per form, all clients.")

    # --- admin side -----------------------------------------------------------------
    stats_cache_ttl_seconds: float = Field(default=60.0, gt=0, le=3600)
    stats_max_days: int = Field(default=366, ge=1, le=3660)
    export_max_rows: int = Field(default=1_000_000, ge=1, le=100_000_000)
    export_batch_rows: int = Field(default=1_000, ge=1, le=100_000)

    # --- webhook outbox ---------------------------------------------------------------
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    outbox_batch: int = Field(default=100, ge=1, le=10_000)
    outbox_concurrency: int = Field(default=8, ge=1, le=1000)
    outbox_lease_seconds: float = Field(default=60.0, gt=0, le=3600)
    outbox_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    outbox_backoff_max_seconds: float = Field(default=3600.0, gt=0, le=86_400)
    outbox_give_up_after_seconds: float = Field(
        default=7 * 86_400,
        gt=0,
        description="A receiver down longer than this loses nothing silently: the row stays, marked failed.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    webhook_allow_private_addresses: bool = Field(
        default=False,
        description="Deliver to loopback/private/link-local addresses (tests, on-premise); "
        "off by default so a form cannot make the platform call its own network.",
    )

    @field_validator("rate_per_ip", "rate_per_form")
    @classmethod
    def _valid_limit(cls, value: str) -> str:
        parse_limit(value)
        return value
