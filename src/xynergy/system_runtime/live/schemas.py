"""Bodies of the live-progress API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["WsTicket"]


class WsTicket(BaseModel):
    ticket: str = Field(
        description="Single use: pass it as ?ticket= on /ws/workflows/{run_id} before it expires."
    )
    expires_at: datetime
