"""Who may touch which conversation.

A conversation belongs to the key that created it. ``assistant:chat`` works on
the key's own conversations; ``assistant:audit`` also lets a key read (never
change) every conversation of its tenant. Anything else answers 404, exactly as
a conversation that does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.auth.dependencies import require_scopes

__all__ = ["AUDIT_SCOPE", "Chatter", "Talker", "reader_key_filter"]

AUDIT_SCOPE = "assistant:audit"

Chatter = Annotated[AuthContext, Depends(require_scopes("assistant:chat"))]
# A message is answered through the AI Routing Engine on the key's behalf: the key
# must be allowed to generate there too.
Talker = Annotated[AuthContext, Depends(require_scopes("assistant:chat", "ai:generate"))]


def reader_key_filter(auth: AuthContext) -> str | None:
    """The owning key a read is limited to, or None for the whole tenant."""
    return None if auth.allows(AUDIT_SCOPE) else auth.key_id
