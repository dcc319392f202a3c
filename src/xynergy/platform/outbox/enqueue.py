"""Adding a webhook message to the outbox, inside the caller's transaction.

The row commits (or rolls back) with the change it reports, so a notification
exists exactly when that change does; the dispatcher delivers it later, however
long the receiver is down.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Exists
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.platform.db.base import new_id, utcnow
from xynergy.platform.outbox.repository import OutboxRepository

__all__ = ["enqueue", "render_payload"]


def render_payload(document: dict[str, Any]) -> str:
    """The exact bytes that are signed and sent: compact, key-ordered JSON."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


async def enqueue(
    session: AsyncSession,
    *,
    tenant_id: str,
    source_kind: str,
    source_id: str,
    event: str,
    payload: str,
    message_id: str | None = None,
    only_if: Exists | None = None,
) -> str:
    """Add one message in the caller's transaction and return its id.

    Args:
        session: The caller's unit of work; the caller commits.
        tenant_id: Whose message it is.
        source_kind: The kind a resolver is registered for (``intake-form``).
        source_id: What that resolver turns into the URL and signing secrets.
        event: The ``X-Xynergy-Event`` header.
        payload: The exact body (see :func:`render_payload`); receivers verify it.
        message_id: The id, when the payload already names it (the delivery id).
        only_if: Add the row only when this holds, in the same statement.
    """
    identifier = message_id or new_id()
    now = utcnow()
    await OutboxRepository(session).add(
        {
            "id": identifier,
            "tenant_id": tenant_id,
            "source_kind": source_kind,
            "source_id": source_id,
            "event": event,
            "payload": payload,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        },
        only_if=only_if,
    )
    return identifier
