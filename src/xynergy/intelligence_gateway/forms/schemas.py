"""Request and response schemas of the intake forms admin API.

Hard caps here stop oversized input before any work; the configurable bounds
(``IntakeSettings``, always at or below these caps) are checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from xynergy.platform.schema_bounds import setting_bounds
from xynergy.platform.text import MAX_ESCAPE_EXPANSION, PlainText, RawText

__all__ = [
    "Form",
    "FormCreate",
    "FormFilters",
    "FormKind",
    "FormUpdate",
    "FormUpdated",
    "FormWithSecret",
]

FormKind = Literal["beta", "contact"]

# The column sizes and IntakeSettings' upper limits: no setting can go past them.
NAME_HARD_MAX = 1000
ORIGINS_HARD_MAX = 200
# scheme + "://" + a 253-character host + ":" + port, with room to spare.
ORIGIN_HARD_MAX = 300
WEBHOOK_URL_HARD_MAX = 8192
PUBLIC_ID_MAX = 40
ID_LENGTH = 32
# Names stored before sanitising was bounded by the column may be this long on SQLite.
_ESCAPED_NAME_MAX = NAME_HARD_MAX * MAX_ESCAPE_EXPANSION

# A form's name is shown in dashboards: display text, no markup survives. Origins
# and the webhook URL are checked by the service, which owns their syntax.
Name = Annotated[
    str,
    PlainText(max_length=NAME_HARD_MAX, min_length=1),
    Field(json_schema_extra=setting_bounds(maxLength="intake.form_name_max_chars")),
]
# What a browser sends as ``Origin``: scheme://host[:port]. The service also
# accepts IPv6 literals and international names (stored as punycode), which this
# pattern leaves out, and refuses http in production.
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_PORT = "(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
ORIGIN_PATTERN = (
    f"^[Hh][Tt][Tt][Pp][Ss]?://(({_LABEL}\\.)*{_TOP_LABEL}|({_OCTET}\\.){{3}}{_OCTET})"
    f"(:{_PORT})?/?$"
)
Origin = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    RawText(max_length=ORIGIN_HARD_MAX),
    WithJsonSchema({"type": "string", "maxLength": ORIGIN_HARD_MAX, "pattern": ORIGIN_PATTERN}),
]
Origins = Annotated[
    list[Origin],
    Field(
        min_length=1,
        max_length=ORIGINS_HARD_MAX,
        json_schema_extra=setting_bounds(maxItems="intake.form_origins_max"),
    ),
]
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    RawText(max_length=WEBHOOK_URL_HARD_MAX, min_length=1),
    Field(json_schema_extra=setting_bounds(maxLength="intake.webhook_url_max_chars")),
]


class FormCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FormKind
    name: Name
    allowed_origins: Origins = Field(
        description="Exact site origins (scheme://host[:port]) allowed to post to the form."
    )
    webhook_url: WebhookUrl | None = None


class FormUpdate(BaseModel):
    """A partial update: only the fields sent change; only ``webhook_url`` may be null."""

    # Declared as the validator below enforces: at least one field, no nulls but
    # webhook_url's.
    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: Name | SkipJsonSchema[None] = None
    allowed_origins: Origins | SkipJsonSchema[None] = None
    webhook_url: WebhookUrl | None = Field(default=None, description="null removes the webhook.")
    active: bool | SkipJsonSchema[None] = None
    rotate_webhook_secret: bool = Field(
        default=False, description="Answer with a new webhook secret (shown this once)."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_nulls_and_not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if not data:
                raise ValueError("send at least one field to change")
            nulls = sorted(
                str(name) for name, value in data.items() if value is None and name != "webhook_url"
            )
            if nulls:
                raise ValueError(f"these fields cannot be null: {', '.join(nulls)}")
        return data


class Form(BaseModel):
    """A form as listed: its webhook secret is never shown again after creation."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(max_length=ID_LENGTH)
    public_id: str = Field(
        max_length=PUBLIC_ID_MAX, description="Not a secret: the page posts to it."
    )
    kind: FormKind
    name: str = Field(max_length=_ESCAPED_NAME_MAX)
    allowed_origins: list[str] = Field(max_length=ORIGINS_HARD_MAX)
    webhook_url: str | None = Field(max_length=WEBHOOK_URL_HARD_MAX)
    active: bool
    previous_webhook_secret_expires_at: datetime | None = Field(
        description="After a rotate_webhook_secret, when the previous secret stops signing "
        "deliveries beside the new one (a past time: it has stopped); null when only one "
        "secret signs."
    )
    created_at: datetime
    updated_at: datetime


class FormWithSecret(Form):
    """A form as answered by its creation, or by a secret rotation: the only time
    the webhook secret is shown."""

    webhook_secret: str = Field(
        max_length=128, description="HMAC key of the webhook signature; store it now."
    )


class FormUpdated(Form):
    """A form as answered by a change: the new secret only if one was asked for."""

    webhook_secret: str | None = Field(
        default=None,
        max_length=128,
        description="The new webhook secret when rotate_webhook_secret was sent, else null. "
        "The previous one keeps signing too until previous_webhook_secret_expires_at.",
    )


class FormFilters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FormKind | None = None
    active: bool | None = None
