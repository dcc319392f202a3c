"""Request and response schemas of the tenant and key admin API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from xynergy.platform.auth.scopes import KNOWN_SCOPES
from xynergy.platform.text import RawText

__all__ = ["ApiKey", "ApiKeyCreate", "ApiKeyCreated", "ApiKeyRotate", "Tenant", "TenantCreate"]

_NAME = Field(min_length=1, max_length=200, pattern=r"^[\w .:@/-]+$")
_MAX_SCOPES = 32
_MAX_SCOPE_LENGTH = 64
# Checked against the known scopes by the service, whose error lists the valid
# ones; the schema declares them so clients and generators know them up front.
ScopeName = Annotated[
    str,
    RawText(max_length=_MAX_SCOPE_LENGTH, min_length=1),
    WithJsonSchema({"type": "string", "enum": sorted(KNOWN_SCOPES)}),
]
_MAX_KEY_LIFETIME_SECONDS = 5 * 365 * 86_400
_MAX_GRACE_SECONDS = 30 * 86_400


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME


class Tenant(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    created_at: datetime


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    scopes: list[ScopeName] = Field(min_length=1, max_length=_MAX_SCOPES)
    environment: Literal["live", "test"] = "live"
    expires_in_seconds: int | None = Field(default=None, ge=60, le=_MAX_KEY_LIFETIME_SECONDS)


class ApiKeyRotate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int | None = Field(
        default=None, ge=0, le=_MAX_GRACE_SECONDS, description="How long the old key stays valid."
    )


class ApiKey(BaseModel):
    """A key as listed: never the secret, only what identifies it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    tenant_id: str
    name: str
    display_prefix: str
    last4: str
    environment: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    grace_until: datetime | None
    rotated_from: str | None
    last_used_at: datetime | None


class ApiKeyCreated(BaseModel):
    """A new key. ``secret`` is shown this once and cannot be retrieved again."""

    key: ApiKey
    secret: str
