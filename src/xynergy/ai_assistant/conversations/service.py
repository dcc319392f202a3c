"""Conversation logic: ownership, bounds, pages and exports. Services only flush."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_assistant.auth import reader_key_filter
from xynergy.ai_assistant.config import AssistantSettings
from xynergy.ai_assistant.models import Conversation, Message
from xynergy.ai_assistant.repository import AssistantRepository
from xynergy.ai_assistant.schemas import (
    ConversationDetail,
    ConversationOut,
    ExportFormat,
    MessageOut,
    Usage,
)
from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.base import utcnow
from xynergy.platform.exceptions import Conflict, NotFound
from xynergy.platform.pagination import PageParams, PageRequest, split_keyset_page, split_page
from xynergy.platform.schemas import Page

__all__ = [
    "conversation_out",
    "create_conversation",
    "delete_conversation",
    "export_conversation",
    "get_conversation",
    "list_conversations",
    "message_out",
    "new_conversation",
    "owned_conversation",
    "rename_conversation",
]

_NOT_FOUND = "No such conversation."


def conversation_out(conversation: Conversation) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        title=conversation.title,
        message_count=conversation.message_count,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
        last_activity_at=conversation.last_activity_at,
    )


def message_out(message: Message) -> MessageOut:
    usage = None
    if message.input_tokens is not None and message.output_tokens is not None:
        usage = Usage(
            input_tokens=message.input_tokens,
            output_tokens=message.output_tokens,
            cost_usd=message.cost_usd or "0",
        )
    return MessageOut(
        id=message.id,
        seq=message.seq,
        role=message.role,
        content=message.content,
        status=message.status,
        tool_calls=message.tool_calls,
        summary_through_seq=message.summary_through_seq,
        model=message.model,
        provider=message.provider,
        usage=usage,
        created_at=message.created_at,
    )


async def owned_conversation(
    session: AsyncSession, *, caller: AuthContext, conversation_id: str, writing: bool
) -> Conversation:
    """The caller's conversation (or, to read, the tenant's with assistant:audit); else 404."""
    key_id = caller.key_id if writing else reader_key_filter(caller)
    conversation = await AssistantRepository(session).conversation(
        tenant_id=caller.tenant_id, conversation_id=conversation_id, key_id=key_id
    )
    if conversation is None:
        raise NotFound(_NOT_FOUND)
    return conversation


async def new_conversation(
    session: AsyncSession,
    *,
    caller: AuthContext,
    settings: AssistantSettings,
    title: str,
    messages: int = 0,
    positions: int = 0,
) -> Conversation:
    """A new conversation of the caller's key, within the per-key bound.

    ``messages`` and ``positions`` are counted and taken at once (a first turn's),
    as :meth:`AssistantRepository.reserve` would, without a second statement.
    """
    repository = AssistantRepository(session)
    owned = await repository.count_for_key(tenant_id=caller.tenant_id, key_id=caller.key_id)
    if owned >= settings.conversations_per_key_max:
        raise Conflict(
            f"This key already has {settings.conversations_per_key_max} conversations, the "
            "most allowed; delete one first."
        )
    return await repository.add_conversation(
        Conversation(
            tenant_id=caller.tenant_id,
            key_id=caller.key_id,
            title=title,
            message_count=messages,
            next_seq=positions,
        )
    )


async def create_conversation(
    session: AsyncSession, *, caller: AuthContext, settings: AssistantSettings, title: str
) -> ConversationOut:
    conversation = await new_conversation(session, caller=caller, settings=settings, title=title)
    return conversation_out(conversation)


async def list_conversations(
    session: AsyncSession, *, caller: AuthContext, title_contains: str | None, params: PageParams
) -> Page[ConversationOut]:
    rows = await AssistantRepository(session).page(
        tenant_id=caller.tenant_id,
        key_id=reader_key_filter(caller),
        title_contains=title_contains,
        params=params,
    )
    page, cursor = split_page(rows, params, lambda row: (row.created_at, row.id))
    return Page(items=[conversation_out(row) for row in page], next_cursor=cursor)


async def get_conversation(
    session: AsyncSession, *, caller: AuthContext, conversation_id: str, page: PageRequest
) -> ConversationDetail:
    conversation = await owned_conversation(
        session, caller=caller, conversation_id=conversation_id, writing=False
    )
    after = page.after([int])
    rows = await AssistantRepository(session).message_page(
        conversation_id=conversation.id,
        after=[value for value in after if isinstance(value, int)] if after else None,
        limit=page.limit,
    )
    messages, cursor = split_keyset_page(rows, page.limit, lambda row: (row.seq,))
    return ConversationDetail(
        **conversation_out(conversation).model_dump(),
        messages=[message_out(row) for row in messages],
        next_cursor=cursor,
    )


async def rename_conversation(
    session: AsyncSession, *, caller: AuthContext, conversation_id: str, title: str
) -> ConversationOut:
    conversation = await owned_conversation(
        session, caller=caller, conversation_id=conversation_id, writing=True
    )
    conversation.title = title
    conversation.updated_at = utcnow()
    await session.flush()
    return conversation_out(conversation)


async def delete_conversation(
    session: AsyncSession, *, caller: AuthContext, conversation_id: str
) -> None:
    conversation = await owned_conversation(
        session, caller=caller, conversation_id=conversation_id, writing=True
    )
    await AssistantRepository(session).delete_conversation(conversation)


async def export_conversation(
    session: AsyncSession,
    *,
    caller: AuthContext,
    conversation_id: str,
    export_format: ExportFormat,
    settings: AssistantSettings,
) -> tuple[str, str]:
    """The export's text and media type: the newest messages, oldest first."""
    conversation = await owned_conversation(
        session, caller=caller, conversation_id=conversation_id, writing=False
    )
    rows = await AssistantRepository(session).export_rows(
        conversation_id=conversation.id, limit=settings.export_messages_max
    )
    messages = [message_out(row) for row in reversed(rows)]
    left_out = max(0, conversation.message_count - len(messages))
    if export_format == "json":
        document: dict[str, Any] = {
            "conversation": conversation_out(conversation).model_dump(mode="json"),
            "messages": [message.model_dump(mode="json") for message in messages],
            "messages_left_out": left_out,
        }
        return json.dumps(document, ensure_ascii=False), "application/json"
    return _markdown(conversation, messages, left_out), "text/markdown; charset=utf-8"


def _markdown(conversation: Conversation, messages: list[MessageOut], left_out: int) -> str:
    # Content is kept as written (Markdown is the point); a reader renders it sanitised.
    lines = [f"# {conversation.title or 'Conversation'}", ""]
    lines.append(f"_Exported {utcnow().isoformat()}; conversation {conversation.id}._")
    lines.append("")
    if left_out:
        lines += [f"_{left_out} older messages are not in this export._", ""]
    for message in messages:
        when = message.created_at.isoformat()
        failed = " (failed)" if message.status == "failed" else ""
        lines += [f"## {message.role.capitalize()}{failed} · {when}", "", message.content, ""]
    return "\n".join(lines)
