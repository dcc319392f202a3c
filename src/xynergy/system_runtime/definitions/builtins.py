"""Definitions shipped with the runtime, available to every tenant (version 1 each).

Each is checked against the built-in catalogue and the default bounds when this
module is imported: a built-in that could not run fails at startup, not in a run.
"""

from __future__ import annotations

from typing import Any

from xynergy.system_runtime.catalogue import BUILT_IN_OPERATIONS
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.spec import WorkflowSpec, check_definition

__all__ = ["BUILT_IN_DEFINITIONS"]


def _ref(pointer: str) -> dict[str, str]:
    return {"$ref": pointer}


_CAMPAIGN_FROM_RESEARCH: dict[str, Any] = {
    "name": "campaign-from-research",
    "description": "Research keywords from seed topics, track the chosen phrases, generate a "
    "draft campaign, wait for a person's approval, then approve and activate the campaign.",
    "inputs": {
        "seeds": {"type": "array", "description": "Seed topics, e.g. ['trail running']."},
        "locale": {"type": "string", "description": "Locale of the keywords, e.g. en-US."},
        "track": {
            "type": "array",
            "description": "The phrases to track (suggestions are normalised: lowercase).",
        },
        "campaign": {
            "type": "object",
            "description": "The campaign to generate: the body of the Marketing Engine's "
            "POST /campaigns/generate (business_type, goals, channels, audience, dates, budget).",
        },
    },
    "steps": [
        {
            "id": "research",
            "operation": "marketing.research",
            "input": {"seeds": _ref("/input/seeds"), "locale": _ref("/input/locale")},
        },
        {
            "id": "track",
            "operation": "marketing.track_researched",
            "depends_on": ["research"],
            # The same research (served from its cache) with the chosen phrases tracked.
            "input": {
                "seeds": _ref("/input/seeds"),
                "locale": _ref("/input/locale"),
                "add_to_tracked": _ref("/input/track"),
            },
        },
        {
            "id": "campaign",
            "operation": "marketing.generate_campaign",
            "depends_on": ["track"],
            "input": _ref("/input/campaign"),
        },
        {
            "id": "approval",
            "kind": "approval",
            "depends_on": ["campaign"],
            "description": "A person reviews the draft campaign (signal approve or reject).",
        },
        {
            "id": "approve",
            "operation": "marketing.approve_campaign",
            "depends_on": ["approval"],
            "input": {"campaign_id": _ref("/steps/campaign/output/id")},
        },
        {
            "id": "activate",
            "operation": "marketing.activate_campaign",
            "depends_on": ["approve"],
            "input": {"campaign_id": _ref("/steps/campaign/output/id")},
        },
    ],
}

_KEYWORD_RANKINGS: dict[str, Any] = {
    "name": "keyword-rankings-report",
    "description": "Import keywords (best effort), record the day's ranking observations of "
    "tracked keywords, then report the keywords that moved most over the window.",
    "inputs": {
        "keywords": {
            "type": "array",
            "description": "Rows to import: objects of phrase, locale, tags, target_url, intent.",
        },
        "observations": {
            "type": "array",
            "description": "Ranking observations: keyword_id, engine, locale, position, "
            "observed_on (and url).",
        },
        "window": {"type": "integer", "description": "Trending window in days (e.g. 7 or 30)."},
    },
    "steps": [
        {
            "id": "import",
            "operation": "aso.import_keywords",
            "input": {"rows": _ref("/input/keywords"), "mode": "best_effort"},
        },
        {
            "id": "rankings",
            "operation": "aso.record_rankings",
            "depends_on": ["import"],
            "input": {"observations": _ref("/input/observations")},
        },
        {
            "id": "trending",
            "operation": "aso.trending",
            "depends_on": ["rankings"],
            "input": {"window": _ref("/input/window")},
        },
    ],
}

_TRENDING_REPORT: dict[str, Any] = {
    "name": "trending-report",
    "description": "The keywords that moved most and the marketing performance over one "
    "window, read in parallel (a cache warmer when scheduled).",
    "inputs": {
        "window": {"type": "integer", "description": "Days (a configured trending window)."}
    },
    "steps": [
        {"id": "trending", "operation": "aso.trending", "input": {"window": _ref("/input/window")}},
        {
            "id": "performance",
            "operation": "marketing.performance",
            "input": {"window": _ref("/input/window")},
        },
    ],
}

# One durable step: what the AI Assistant runs when a user confirms a drafted campaign.
_GENERATE_CAMPAIGN: dict[str, Any] = {
    "name": "generate-campaign",
    "description": "Generate a draft campaign (the Marketing Engine's POST /campaigns/generate).",
    "inputs": {
        "campaign": {
            "type": "object",
            "description": "The body of POST /campaigns/generate (business_type, goals, channels, "
            "audience, dates, budget).",
        }
    },
    "steps": [
        {
            "id": "campaign",
            "operation": "marketing.generate_campaign",
            "input": _ref("/input/campaign"),
        }
    ],
}

# What the AI Assistant runs when a user confirms tracking keywords, creating a
# content item or approving a campaign: one durable step each.
_TRACK_KEYWORDS: dict[str, Any] = {
    "name": "track-keywords",
    "description": "Start tracking keywords (the ASO Engine's bulk import, all or nothing).",
    "inputs": {
        "rows": {
            "type": "array",
            "description": "Rows to track: objects of phrase, locale, tags, target_url, intent.",
        }
    },
    "steps": [
        {
            "id": "track",
            "operation": "aso.import_keywords",
            "input": {"rows": _ref("/input/rows"), "mode": "all_or_nothing"},
        }
    ],
}

_CREATE_CONTENT: dict[str, Any] = {
    "name": "create-content",
    "description": "Create a content item (the ASO Engine's POST /api/content).",
    "inputs": {
        "content": {
            "type": "object",
            "description": "The body of POST /api/content (title, body, status, priority, "
            "target_keywords, author).",
        }
    },
    "steps": [
        {"id": "content", "operation": "aso.create_content", "input": _ref("/input/content")}
    ],
}

_APPROVE_CAMPAIGN: dict[str, Any] = {
    "name": "approve-campaign",
    "description": "Approve a draft campaign (the Marketing Engine's POST "
    "/campaigns/{campaign_id}/approve).",
    "inputs": {"campaign_id": {"type": "string", "description": "The draft campaign's id."}},
    "steps": [
        {
            "id": "approve",
            "operation": "marketing.approve_campaign",
            "input": {"campaign_id": _ref("/input/campaign_id")},
        }
    ],
}


def _checked(raw: dict[str, Any]) -> WorkflowSpec:
    spec = WorkflowSpec.model_validate(raw)
    # Against the default bounds, not this process's environment; a run re-checks
    # the definition against the deployment's own bounds when it starts.
    check_definition(
        spec, catalogue=BUILT_IN_OPERATIONS, settings=RuntimeSettings.model_construct()
    )
    return spec


BUILT_IN_DEFINITIONS: dict[str, WorkflowSpec] = {
    spec.name: spec
    for spec in map(
        _checked,
        [
            _CAMPAIGN_FROM_RESEARCH,
            _KEYWORD_RANKINGS,
            _TRENDING_REPORT,
            _GENERATE_CAMPAIGN,
            _TRACK_KEYWORDS,
            _CREATE_CONTENT,
            _APPROVE_CAMPAIGN,
        ],
    )
}
