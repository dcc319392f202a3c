"""Conversation endpoints of the AI Assistant."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from xynergy.ai_assistant.auth import Chatter
from xynergy.ai_assistant.config import TITLE_HARD_MAX
from xynergy.ai_assistant.conversations import service
from xynergy.ai_assistant.dependencies import AssistantDep
from xynergy.ai_assistant.schemas import (
    ConversationCreate,
    ConversationDetail,
    ConversationOut,
    ConversationUpdate,
    ExportFormat,
)
from xynergy.platform.db.session import SessionDep
from xynergy.platform.exceptions import Conflict
from xynergy.platform.pagination import PageParamsDep, PageRequestDep
from xynergy.platform.routing import api_router, raises
from xynergy.platform.schemas import Page, ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["conversations"])

TitleSearch = Annotated[
    str | None,
    Query(
        max_length=TITLE_HARD_MAX,
        description="Only conversations whose title contains this (any case).",
    ),
]


@router.post("/conversations", status_code=201)
@raises(Conflict)
async def create_conversation(
    body: ConversationCreate, session: SessionDep, auth: Chatter, assistant: AssistantDep
) -> ConversationOut:
    """Start an empty conversation owned by this key."""
    return await service.create_conversation(
        session, caller=auth, settings=assistant, title=body.title
    )


@router.get("/conversations")
async def list_conversations(
    session: SessionDep, auth: Chatter, page: PageParamsDep, q: TitleSearch = None
) -> Page[ConversationOut]:
    """This key's conversations (the tenant's with assistant:audit), newest first."""
    return await service.list_conversations(session, caller=auth, title_contains=q, params=page)


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: ResourceId, session: SessionDep, auth: Chatter, page: PageRequestDep
) -> ConversationDetail:
    """One conversation with a page of its messages, newest first."""
    return await service.get_conversation(
        session, caller=auth, conversation_id=conversation_id, page=page
    )


@router.patch("/conversations/{conversation_id}")
async def rename_conversation(
    conversation_id: ResourceId, body: ConversationUpdate, session: SessionDep, auth: Chatter
) -> ConversationOut:
    """Change a conversation's title."""
    return await service.rename_conversation(
        session, caller=auth, conversation_id=conversation_id, title=body.title
    )


@router.delete("/conversations/{conversation_id}", status_code=204)
async def delete_conversation(
    conversation_id: ResourceId, session: SessionDep, auth: Chatter
) -> Response:
    """Delete a conversation and all its messages."""
    await service.delete_conversation(session, caller=auth, conversation_id=conversation_id)
    return Response(status_code=204)


@router.get(
    "/conversations/{conversation_id}/export",
    responses={200: {"content": {"application/json": {}, "text/markdown": {}}}},
    response_class=Response,
)
async def export_conversation(
    conversation_id: ResourceId,
    session: SessionDep,
    auth: Chatter,
    assistant: AssistantDep,
    format: Annotated[ExportFormat, Query(description="json or markdown.")] = "json",  # noqa: A002
) -> Response:
    """Export a conversation's messages, oldest first, as JSON or Markdown."""
    text, media_type = await service.export_conversation(
        session,
        caller=auth,
        conversation_id=conversation_id,
        export_format=format,
        settings=assistant,
    )
    return Response(text, media_type=media_type)
