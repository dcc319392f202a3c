"""Request and response schemas of the intake forms admin API.

Hard caps here stop oversized input before any work; the configurable bounds
(``IntakeSettings``, always at or below these caps) are checked by the service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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
Name = Annotated[str, PlainText(max_length=NAME_HARD_MAX, min_length=1)]
Origin = Annotated[
    str, StringConstraints(strip_whitespace=True), RawText(max_length=ORIGIN_HARD_MAX)
]
Origins = Annotated[list[Origin], Field(min_length=1, max_length=ORIGINS_HARD_MAX)]
WebhookUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    RawText(max_length=WEBHOOK_URL_HARD_MAX, min_length=1),
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

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    allowed_origins: Origins | None = None
    webhook_url: WebhookUrl | None = Field(default=None, description="null removes the webhook.")
    active: bool | None = None
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
        description="The new webhook secret when rotate_webhook_secret was sent, else null.",
    )


class FormFilters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FormKind | None = None
    active: bool | None = None
