"""All SQL of the AI Assistant: conversations and messages, always tenant-scoped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from xynergy.ai_assistant.models import Conversation, Message
from xynergy.platform.db.base import utcnow
from xynergy.platform.pagination import PageParams, created_page_rows, keyset_page_by

__all__ = ["CONVERSATION_ROLES", "REPLY_COLUMNS", "AssistantRepository"]

# The messages a conversation shows and a context is built from (summaries are
# kept apart; failed replies are shown but never sent to a model again).
CONVERSATION_ROLES = ("user", "assistant", "tool")

# A turn's own statements, built once on the tables (not the ORM classes): every
# turn runs them, and building an ORM statement and synchronising the session
# cost several times the SQL itself on SQLite (bench/assistant_latency.py).
_conversations = cast(Table, Conversation.__table__)
_messages = cast(Table, Message.__table__)
_OPEN_TURN = (
    update(_conversations)
    .where(
        _conversations.c.id == bindparam("turn_conversation_id"),
        _conversations.c.tenant_id == bindparam("turn_tenant_id"),
        _conversations.c.key_id == bindparam("turn_key_id"),
        _conversations.c.message_count + bindparam("messages") <= bindparam("limit"),
    )
    .values(
        message_count=_conversations.c.message_count + bindparam("messages"),
        next_seq=_conversations.c.next_seq + bindparam("positions"),
        last_activity_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(_conversations.c.next_seq)
)
_INSERT_MESSAGE = insert(_messages)
REPLY_COLUMNS = (
    "id",
    "tenant_id",
    "conversation_id",
    "seq",
    "role",
    "content",
    "status",
    "model",
    "provider",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "created_at",
)
_INSERT_REPLY_IF_LIVE = insert(_messages).from_select(
    list(REPLY_COLUMNS),
    select(*(bindparam(name, type_=_messages.c[name].type) for name in REPLY_COLUMNS)).where(
        exists().where(_conversations.c.id == bindparam("live_conversation_id"))
    ),
)


class AssistantRepository:
    """Queries over ``assistant_conversations`` and ``assistant_messages``."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- conversations ---------------------------------------------------------------
    async def conversation(
        self, *, tenant_id: str, conversation_id: str, key_id: str | None
    ) -> Conversation | None:
        """The conversation, if it is the tenant's (and ``key_id``'s, unless None)."""
        query = select(Conversation).where(
            Conversation.id == conversation_id, Conversation.tenant_id == tenant_id
        )
        if key_id is not None:
            query = query.where(Conversation.key_id == key_id)
        return await self.session.scalar(query)

    async def count_for_key(self, *, tenant_id: str, key_id: str) -> int:
        query = select(func.count()).where(
            Conversation.tenant_id == tenant_id, Conversation.key_id == key_id
        )
        return int(await self.session.scalar(query) or 0)

    async def add_conversation(self, conversation: Conversation) -> Conversation:
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def page(
        self, *, tenant_id: str, key_id: str | None, title_contains: str | None, params: PageParams
    ) -> Sequence[Conversation]:
        query = select(Conversation).where(Conversation.tenant_id == tenant_id)
        if key_id is not None:
            query = query.where(Conversation.key_id == key_id)
        if title_contains:
            query = query.where(
                func.lower(Conversation.title).contains(title_contains.lower(), autoescape=True)
            )
        return await created_page_rows(self.session, query, Conversation, params)

    async def delete_conversation(self, conversation: Conversation) -> None:
        # Messages first: SQLite enforces the cascade only with foreign keys on.
        await self.session.execute(
            delete(Message).where(Message.conversation_id == conversation.id)
        )
        await self.session.delete(conversation)
        await self.session.flush()

    async def reserve(
        self, *, conversation_id: str, messages: int, limit: int, positions: int
    ) -> int | None:
        """Count ``messages`` more against ``limit`` and take ``positions`` seqs, at once.

        Returns the first position taken, or None when the bound would be passed
        (a single conditional UPDATE: concurrent turns cannot both pass it).
        """
        now = utcnow()
        result = await self.session.execute(
            update(Conversation)
            .where(
                Conversation.id == conversation_id,
                Conversation.message_count + messages <= limit,
            )
            .values(
                message_count=Conversation.message_count + messages,
                next_seq=Conversation.next_seq + positions,
                last_activity_at=now,
                updated_at=now,
            )
            .returning(Conversation.next_seq)
        )
        after = result.scalar_one_or_none()
        return None if after is None else int(after) - positions

    async def open_turn(
        self,
        *,
        tenant_id: str,
        key_id: str,
        conversation_id: str,
        messages: int,
        limit: int,
        positions: int,
    ) -> int | None:
        """:meth:`reserve`, for the caller's own conversation only, in one statement.

        Ownership, the bound and the reservation are one conditional UPDATE: a
        turn's first statement takes the write lock (SQLite) or the row lock
        (PostgreSQL) at once, and no read comes before it. None: not the caller's
        conversation, or the bound would be passed (:meth:`conversation` tells which).
        """
        result = await self.session.execute(
            _OPEN_TURN,
            {
                "turn_conversation_id": conversation_id,
                "turn_tenant_id": tenant_id,
                "turn_key_id": key_id,
                "messages": messages,
                "limit": limit,
                "positions": positions,
                "now": utcnow(),
            },
        )
        after = result.scalar_one_or_none()
        return None if after is None else int(after) - positions

    async def insert_message(self, values: Mapping[str, Any]) -> None:
        """One message row from its column values (no ORM object to flush)."""
        await self.session.execute(_INSERT_MESSAGE, dict(values))

    async def insert_reply_if_live(self, values: Mapping[str, Any]) -> bool:
        """A reply row (every column of ``REPLY_COLUMNS``), only if its conversation
        still exists; whether it did.

        A reply is stored after its model call, which a deletion may have raced:
        INSERT ... SELECT ... WHERE EXISTS checks and writes in one statement.
        """
        params = {name: values.get(name) for name in REPLY_COLUMNS}
        params["live_conversation_id"] = values["conversation_id"]
        result = await self.session.execute(_INSERT_REPLY_IF_LIVE, params)
        return bool(getattr(result, "rowcount", 0))

    async def inactive_since(self, *, cutoff: datetime, limit: int) -> Sequence[str]:
        """Ids of conversations without activity since ``cutoff`` (any tenant)."""
        query = (
            select(Conversation.id)
            .where(Conversation.last_activity_at < cutoff)
            .order_by(Conversation.last_activity_at)
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def delete_by_ids(self, ids: Sequence[str]) -> None:
        await self.session.execute(delete(Message).where(Message.conversation_id.in_(ids)))
        await self.session.execute(delete(Conversation).where(Conversation.id.in_(ids)))

    # --- messages --------------------------------------------------------------------
    async def add_message(self, message: Message) -> Message:
        self.session.add(message)
        await self.session.flush()
        return message

    async def message_page(
        self, *, conversation_id: str, after: Sequence[int] | None, limit: int
    ) -> Sequence[Message]:
        """Newest first, by position."""
        query = keyset_page_by(
            select(Message).where(Message.conversation_id == conversation_id),
            columns=[Message.seq],
            after=after,
            limit=limit,
        )
        return (await self.session.scalars(query)).all()

    async def latest_summary(self, *, conversation_id: str) -> Message | None:
        query = (
            select(Message)
            .where(Message.conversation_id == conversation_id, Message.role == "summary")
            .order_by(Message.seq.desc())
            .limit(1)
        )
        return await self.session.scalar(query)

    async def turns_after(
        self, *, conversation_id: str, after_seq: int, before_seq: int, limit: int
    ) -> Sequence[Message]:
        """Complete conversation messages with ``after_seq < seq < before_seq``, newest first."""
        query = (
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.seq > after_seq,
                Message.seq < before_seq,
                Message.role.in_(CONVERSATION_ROLES),
                Message.status == "complete",
            )
            .order_by(Message.seq.desc())
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()

    async def tool_message(self, *, conversation_id: str, message_id: str) -> Message | None:
        """A ``tool`` message of the conversation (where a proposed action lives)."""
        query = select(Message).where(
            Message.id == message_id,
            Message.conversation_id == conversation_id,
            Message.role == "tool",
        )
        return await self.session.scalar(query)

    async def export_rows(self, *, conversation_id: str, limit: int) -> Sequence[Message]:
        """The newest ``limit`` conversation messages (summaries left out), newest first."""
        query = (
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                Message.role.in_(CONVERSATION_ROLES),
            )
            .order_by(Message.seq.desc())
            .limit(limit)
        )
        return (await self.session.scalars(query)).all()
