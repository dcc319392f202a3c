"""Request and response bodies of ``/session``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from xynergy.platform.text import RawText

__all__ = ["SessionBody", "SignIn"]

# A key is 58 characters; room for a pasted one with stray spaces, which then
# answers 401 (malformed) rather than 422. Bounded before anything hashes it.
_MAX_KEY_CHARS = 128


class SignIn(BaseModel):
    """An API key to exchange for a browser session."""

    model_config = ConfigDict(extra="forbid")

    # Raw: a key is data, compared as sent (NUL and lone surrogates refused).
    api_key: Annotated[str, RawText(max_length=_MAX_KEY_CHARS)] = Field(
        description="The API key (xyn_live_... or xyn_test_...); never stored, never logged.",
    )


class SessionBody(BaseModel):
    """The signed-in session: who it acts as, until when, and its CSRF token."""

    tenant_id: str = Field(max_length=32, description="The key's tenant.")
    key_id: str = Field(max_length=32, description="The key the session stands for.")
    scopes: list[str] = Field(max_length=100, description="The key's scopes, sorted.")
    expires_at: datetime = Field(
        description="When the session ends at the latest (the key's end ends it sooner)."
    )
    csrf_token: str = Field(
        max_length=64,
        description="Send as the X-CSRF-Token header on every POST, PUT, PATCH and DELETE "
        "authenticated by the session cookie.",
    )
