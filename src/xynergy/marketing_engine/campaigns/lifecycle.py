"""The campaign life cycle: draft → approved → active → completed, and archived from any."""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from xynergy.marketing_engine.campaigns.schemas import CampaignStatus
from xynergy.platform.exceptions import Conflict

__all__ = ["INITIAL_STATUS", "TRANSITIONS", "Action", "next_status"]

Action = Literal["approve", "activate", "complete", "archive"]
INITIAL_STATUS: CampaignStatus = "draft"

# action -> (the statuses it may start from, the status it leads to)
TRANSITIONS: MappingProxyType[Action, tuple[frozenset[str], CampaignStatus]] = MappingProxyType(
    {
        "approve": (frozenset({"draft"}), "approved"),
        "activate": (frozenset({"approved"}), "active"),
        "complete": (frozenset({"active"}), "completed"),
        "archive": (frozenset({"draft", "approved", "active", "completed"}), "archived"),
    }
)


def next_status(current: str, action: Action) -> CampaignStatus:
    """The status after ``action``; Conflict when ``current`` does not allow it."""
    allowed_from, target = TRANSITIONS[action]
    if current not in allowed_from:
        expected = " or ".join(sorted(allowed_from))
        raise Conflict(f"Cannot {action} a campaign that is {current}; it must be {expected}.")
    return target
