"""The answer of ``POST /admin/secrets/reload``: secret names, never values."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["SecretReloadFailure", "SecretsReloaded"]

_NAME_MAX = 200
_REASON_MAX = 600
_NAMES_MAX = 1000


class SecretReloadFailure(BaseModel):
    """A secret whose new value was refused; the running one stays in use."""

    secret: str = Field(max_length=_NAME_MAX, description="Variable name (never the value).")
    reason: str = Field(max_length=_REASON_MAX, description="Why it was refused.")


class SecretsReloaded(BaseModel):
    """What one reload did, by secret name."""

    trigger: Literal["startup", "sighup", "admin", "poll"]
    reloaded: list[str] = Field(
        max_length=_NAMES_MAX, description="Secrets (and config files) now in use with a new value."
    )
    unchanged: list[str] = Field(
        max_length=_NAMES_MAX, description="Secrets read again with the value already in use."
    )
    failed: list[SecretReloadFailure] = Field(
        max_length=_NAMES_MAX,
        description="Secrets whose new value was refused; the previous one keeps serving.",
    )
