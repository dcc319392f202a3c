"""Action endpoints: read, confirm or reject what the assistant proposed to do."""

from __future__ import annotations

from xynergy.ai_assistant.auth import Chatter
from xynergy.ai_assistant.dependencies import PlatformDep
from xynergy.ai_assistant.schemas import ActionOut
from xynergy.ai_assistant.tools import actions
from xynergy.platform.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    UpstreamUnavailable,
    ValidationFailed,
)
from xynergy.platform.routing import api_router, raises, rate_limit
from xynergy.platform.schemas import ResourceId

__all__ = ["router"]

router = api_router(prefix="/api", tags=["actions"])


@router.get("/conversations/{conversation_id}/actions/{action_id}")
@raises(NotFound)
async def get_action(
    conversation_id: ResourceId, action_id: ResourceId, auth: Chatter, platform: PlatformDep
) -> ActionOut:
    """A proposed action and its progress (a running one's run is read first)."""
    return await actions.read_action(
        platform, caller=auth, conversation_id=conversation_id, action_id=action_id
    )


@router.post("/conversations/{conversation_id}/actions/{action_id}/confirm")
@rate_limit("workflow_start")
@raises(NotFound, Conflict, Forbidden, ValidationFailed, UpstreamUnavailable)
async def confirm_action(
    conversation_id: ResourceId, action_id: ResourceId, auth: Chatter, platform: PlatformDep
) -> ActionOut:
    """Run a proposed action as a System Runtime workflow, with this key's scopes."""
    return await actions.confirm_action(
        platform, caller=auth, conversation_id=conversation_id, action_id=action_id
    )


@router.post("/conversations/{conversation_id}/actions/{action_id}/reject")
@raises(NotFound, Conflict)
async def reject_action(
    conversation_id: ResourceId, action_id: ResourceId, auth: Chatter, platform: PlatformDep
) -> ActionOut:
    """Decline a proposed action; it will never run."""
    return await actions.reject_action(
        platform, caller=auth, conversation_id=conversation_id, action_id=action_id
    )
