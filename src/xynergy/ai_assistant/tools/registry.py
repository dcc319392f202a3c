"""The assistant's tools: each one platform operation, reached through the ServiceClient.

A tool names a service slug, a method and a path of that service's API (the
ServiceClient resolves the slug: no URL here) and the scopes the call needs.
Services do not import each other, so this table repeats the few operations the
System Runtime's catalogue also lists rather than importing it. A tool is
offered only to a key holding its scopes; a tool that ``writes`` is never run
in a turn: it is proposed, and runs as a System Runtime workflow once the user
confirms it (``workflow_start`` maps the tool's arguments to the body of the
runtime's ``POST /api/workflows/start``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from xynergy.platform.auth.context import AuthContext

__all__ = [
    "RUNTIME",
    "TOOLS",
    "Call",
    "Tool",
    "offered",
    "offered_to",
    "openai_tools",
    "relevant_scopes",
    "tool_named",
]

RUNTIME = "system-runtime"
_ASO = "aso-engine"
_AI = "ai-routing-engine"
_MARKETING = "marketing-engine"
_INTAKE = "intelligence-gateway"
_CAMPAIGN_DAYS_DEFAULT = 30
_CAMPAIGN_DAYS_MAX = 365
_LIMIT_MAX = 50
_TEXT_MAX = 200
_KEYWORDS_MAX = 20
# The ASO Engine's default bounds (AsoSettings): a confirmed action within them is
# not refused for its size. Bodies stay well under the turn's argument size.
_LOCALE_DEFAULT = "en-US"
_TAGS_MAX = 20
_TAG_MAX = 64
# A title and an author are stored escaped (``&`` becomes ``&amp;``: at most 5
# times longer) in columns of 1,000 and 200 characters: these always fit.
_TITLE_MAX = 200
_AUTHOR_MAX = 40
_BODY_MAX = 10_000
_TARGET_KEYWORDS_MAX = 50
_AUTHOR_DEFAULT = "AI Assistant"
# Non-blank and without control characters, as the ASO Engine cleans phrases and tags.
_PRINTABLE = r"[^\u0000-\u001f\u007f-\u009f]"
_VISIBLE = r"[^\s\u0000-\u001f\u007f-\u009f]"
_CLEAN = f"^{_PRINTABLE}*{_VISIBLE}{_PRINTABLE}*$"
# language[-Script][-REGION], as the ASO Engine accepts a locale (en, en-US, es-419).
_LOCALE_PATTERN = "^[A-Za-z]{2,3}([-_][A-Za-z]{4})?([-_]([A-Za-z]{2}|[0-9]{3}))?$"
_ID_PATTERN = "^[0-9a-f]{32}$"
# A body keeps its lines (tab, newline, carriage return): other control characters
# are refused by the ASO Engine.
_BODY_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"

Method = Literal["GET", "POST"]
Arguments = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Call:
    """One service call a tool makes: its path (ids filled in), query or JSON body."""

    path: str
    params: dict[str, str] | None = None
    json: dict[str, Any] | None = None


def _query(arguments: Arguments, path: str) -> Call:
    params = {
        key: str(value).lower() if isinstance(value, bool) else str(value)
        for key, value in arguments.items()
        if value is not None and not isinstance(value, (dict, list))
    }
    return Call(path, params or None)


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    scopes: frozenset[str]
    service: str
    method: Method
    path: str
    writes: bool = False
    # How the arguments become the call (a read) or the workflow start (a write).
    build: Callable[[Arguments], Call] | None = None
    workflow_start: Callable[[Arguments], dict[str, Any]] | None = None
    estimated_cost_usd: str | None = None

    def call(self, arguments: Arguments) -> Call:
        return self.build(arguments) if self.build else _query(arguments, self.path)


def _text(description: str, default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "string",
        "minLength": 1,
        "maxLength": _TEXT_MAX,
        "description": description,
    }
    if default is not None:
        schema["default"] = default
    return schema


def _object(properties: dict[str, Any], required: Iterable[str] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


_LIMIT = {"type": "integer", "minimum": 1, "maximum": _LIMIT_MAX, "default": 10}
_PHRASES = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": _TEXT_MAX},
    "maxItems": _KEYWORDS_MAX,
}
# Phrases the ASO Engine will track: each non-blank, printable, within its length.
_CLEAN_PHRASES = {
    "type": "array",
    "items": {"type": "string", "minLength": 1, "maxLength": _TEXT_MAX, "pattern": _CLEAN},
    "minItems": 1,
    "maxItems": _KEYWORDS_MAX,
    "description": f"The phrases to track, at most {_KEYWORDS_MAX}.",
}


def _campaign_start(arguments: Arguments) -> dict[str, Any]:
    """A run of the built-in ``generate-campaign``: the Marketing Engine's campaign
    request made from the tool's few arguments."""
    keywords = [str(k) for k in arguments.get("keywords") or [] if str(k).strip()]
    days = int(arguments.get("days") or _CAMPAIGN_DAYS_DEFAULT)
    # Built when the user confirms: the campaign starts on the day it is made.
    starts = datetime.now(UTC).date()
    goal = "Rank and convert on: " + ", ".join(keywords) if keywords else "Grow awareness"
    campaign = {
        "business_type": str(arguments.get("business_type") or "app"),
        "goals": [goal[:_TEXT_MAX]],
        "channels": [str(arguments.get("channel") or "email")],
        "audience": str(arguments.get("audience") or "Our current users"),
        "starts_on": starts.isoformat(),
        "ends_on": (starts + timedelta(days=days)).isoformat(),
        "budget": str(arguments.get("budget_usd") or 0),
    }
    return {"definition": "generate-campaign", "input": {"campaign": campaign}}


def _track_start(arguments: Arguments) -> dict[str, Any]:
    """A run of the built-in ``track-keywords``: one import row a phrase."""
    locale = str(arguments.get("locale") or _LOCALE_DEFAULT)
    tags = [str(tag) for tag in arguments.get("tags") or []]
    rows = [
        {"phrase": str(phrase), "locale": locale, "tags": tags} for phrase in arguments["phrases"]
    ]
    return {"definition": "track-keywords", "input": {"rows": rows}}


def _content_start(arguments: Arguments) -> dict[str, Any]:
    """A run of the built-in ``create-content``: the ASO Engine's content create body."""
    content = {
        "title": arguments["title"],
        "body": arguments.get("body") or "",
        "status": arguments.get("status") or "draft",
        "priority": arguments.get("priority") or "normal",
        "target_keywords": list(arguments.get("target_keywords") or []),
        "author": arguments.get("author") or _AUTHOR_DEFAULT,
    }
    return {"definition": "create-content", "input": {"content": content}}


def _approve_start(arguments: Arguments) -> dict[str, Any]:
    return {"definition": "approve-campaign", "input": {"campaign_id": arguments["campaign_id"]}}


def _run_start(arguments: Arguments) -> dict[str, Any]:
    return {"definition": arguments["definition"], "input": arguments.get("input") or {}}


TOOLS: tuple[Tool, ...] = (
    Tool(
        name="trending_keywords",
        description="Which tracked keywords are trending: the top keywords whose rankings "
        "moved most over a window of days (7 or 30).",
        parameters=_object(
            {
                "window": {"type": "integer", "enum": [7, 30], "default": 7},
                "direction": {
                    "type": "string",
                    "enum": ["improved", "worsened"],
                    "default": "improved",
                },
                "limit": _LIMIT,
            },
            required=["window"],
        ),
        scopes=frozenset({"keywords:read"}),
        service=_ASO,
        method="GET",
        path="/api/keywords/trending",
    ),
    Tool(
        name="list_keywords",
        description="List the tracked keywords, optionally those containing a text.",
        parameters=_object({"q": _text("Phrase prefix."), "limit": _LIMIT}),
        scopes=frozenset({"keywords:read"}),
        service=_ASO,
        method="GET",
        path="/api/keywords",
    ),
    Tool(
        name="search_content",
        description="Search content pieces (articles, pages) by the keyword they target.",
        parameters=_object(
            {"keyword": _text("The targeted keyword."), "limit": _LIMIT}, required=["keyword"]
        ),
        scopes=frozenset({"content:read"}),
        service=_ASO,
        method="GET",
        path="/api/content",
    ),
    Tool(
        name="research_keywords",
        description="Research new keyword ideas from seed topics (suggestions only; tracks "
        "nothing). Uses the AI: it costs tokens.",
        parameters=_object({"seeds": {**_PHRASES, "minItems": 1}}, required=["seeds"]),
        scopes=frozenset({"marketing:research", "keywords:read", "ai:generate"}),
        service=_MARKETING,
        method="POST",
        path="/keywords/research",
        build=lambda arguments: Call("/keywords/research", json={"seeds": arguments["seeds"]}),
    ),
    Tool(
        name="draft_campaign",
        description="Draft a marketing campaign around chosen phrases (needs confirmation; "
        "runs as a workflow).",
        parameters=_object(
            {
                "keywords": _PHRASES,
                "channel": {"type": "string", "enum": ["email", "social", "search"]},
                "days": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": _CAMPAIGN_DAYS_MAX,
                    "default": _CAMPAIGN_DAYS_DEFAULT,
                },
                "budget_usd": {"type": "number", "minimum": 0, "maximum": 1_000_000},
            },
            required=["keywords"],
        ),
        scopes=frozenset({"campaigns:write", "ai:generate", "workflows:write"}),
        service=RUNTIME,
        method="POST",
        path="/api/workflows/start",
        writes=True,
        workflow_start=_campaign_start,
    ),
    Tool(
        name="start_workflow",
        description="Start a System Runtime workflow by definition name with its input "
        "(needs confirmation).",
        parameters=_object(
            {
                "definition": {
                    "type": "string",
                    "pattern": "^[a-z0-9][a-z0-9-]{0,63}$",
                    "description": "A built-in or tenant workflow definition name.",
                },
                "input": {"type": "object", "description": "The run's named inputs."},
            },
            required=["definition"],
        ),
        scopes=frozenset({"workflows:write"}),
        service=RUNTIME,
        method="POST",
        path="/api/workflows/start",
        writes=True,
        workflow_start=_run_start,
    ),
    Tool(
        name="track_keywords",
        description="Track new keywords: start tracking these phrases (their rankings are "
        "then followed). Needs confirmation; runs as a workflow.",
        parameters=_object(
            {
                "phrases": _CLEAN_PHRASES,
                "locale": {
                    "type": "string",
                    "pattern": _LOCALE_PATTERN,
                    "maxLength": 16,
                    "default": _LOCALE_DEFAULT,
                    "description": "Locale of every phrase, e.g. en-US.",
                },
                "tags": {
                    "type": "array",
                    "items": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": _TAG_MAX,
                        "pattern": _CLEAN,
                    },
                    "maxItems": _TAGS_MAX,
                    "description": "Tags given to every phrase.",
                },
            },
            required=["phrases"],
        ),
        scopes=frozenset({"keywords:write", "workflows:write"}),
        service=RUNTIME,
        method="POST",
        path="/api/workflows/start",
        writes=True,
        workflow_start=_track_start,
    ),
    Tool(
        name="create_content",
        description="Create a content item: write a new blog post, article or page with a "
        "title and body (saved as a draft unless told). Needs confirmation; runs as a workflow.",
        parameters=_object(
            {
                "title": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": _TITLE_MAX,
                    "pattern": _CLEAN,
                    "description": "The title (plain text).",
                },
                "body": {
                    "type": "string",
                    "maxLength": _BODY_MAX,
                    "pattern": _BODY_PATTERN,
                    "description": "The text; simple HTML markup is kept.",
                },
                "status": {
                    "type": "string",
                    "enum": ["draft", "review", "scheduled", "published", "archived"],
                    "default": "draft",
                },
                "priority": {
                    "type": "string",
                    "enum": ["low", "normal", "high", "urgent"],
                    "default": "normal",
                },
                "target_keywords": {
                    **_CLEAN_PHRASES,
                    "minItems": 0,
                    "maxItems": _TARGET_KEYWORDS_MAX,
                    "description": "Keywords the piece targets.",
                },
                "author": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": _AUTHOR_MAX,
                    "pattern": _CLEAN,
                    "default": _AUTHOR_DEFAULT,
                },
            },
            required=["title"],
        ),
        scopes=frozenset({"content:write", "workflows:write"}),
        service=RUNTIME,
        method="POST",
        path="/api/workflows/start",
        writes=True,
        workflow_start=_content_start,
    ),
    Tool(
        name="approve_campaign",
        description="Approve a campaign by its id (a draft becomes approved, ready to "
        "activate). Needs confirmation; runs as a workflow.",
        parameters=_object(
            {
                "campaign_id": {
                    "type": "string",
                    "pattern": _ID_PATTERN,
                    "description": "The campaign's id (32 hexadecimal characters).",
                }
            },
            required=["campaign_id"],
        ),
        scopes=frozenset({"campaigns:write", "workflows:write"}),
        service=RUNTIME,
        method="POST",
        path="/api/workflows/start",
        writes=True,
        workflow_start=_approve_start,
    ),
    Tool(
        name="workflow_progress",
        description="Progress of a workflow run: its status and each step's.",
        parameters=_object(
            {"run_id": {"type": "string", "pattern": _ID_PATTERN}}, required=["run_id"]
        ),
        scopes=frozenset({"workflows:read"}),
        service=RUNTIME,
        method="GET",
        path="/api/workflows/{run_id}",
        build=lambda arguments: Call(f"/api/workflows/{arguments['run_id']}"),
    ),
    Tool(
        name="ai_usage",
        description="AI usage and spend (tokens, cost) of the tenant, by model and task.",
        parameters=_object({}),
        scopes=frozenset({"ai:usage"}),
        service=_AI,
        method="GET",
        path="/api/usage",
    ),
    Tool(
        name="ai_budgets",
        description="The tenant's AI budgets: limits and what is spent of them.",
        parameters=_object({}),
        scopes=frozenset({"ai:usage"}),
        service=_AI,
        method="GET",
        path="/api/budgets",
    ),
    Tool(
        name="intake_stats",
        description="Intake statistics: beta applications and contact submissions counted "
        "by kind, status, source and day.",
        parameters=_object({}),
        scopes=frozenset({"intake:read"}),
        service=_INTAKE,
        method="GET",
        path="/api/stats",
    ),
)

_BY_NAME = {tool.name: tool for tool in TOOLS}
_TOOL_SCOPES = frozenset().union(*(tool.scopes for tool in TOOLS))


def tool_named(name: str) -> Tool | None:
    return _BY_NAME.get(name)


def offered(caller: AuthContext, enabled: Iterable[str] | None = None) -> tuple[Tool, ...]:
    """The tools ``caller``'s key may use (of ``enabled``, when given)."""
    allowed = None if enabled is None else frozenset(enabled)
    return tuple(
        tool
        for tool in TOOLS
        if caller.allows(*tool.scopes) and (allowed is None or tool.name in allowed)
    )


def relevant_scopes(caller: AuthContext) -> frozenset[str]:
    """What of ``caller``'s scopes decides which tools it is offered (all: an admin)."""
    return _TOOL_SCOPES if caller.is_admin else caller.scopes & _TOOL_SCOPES


def offered_to(scopes: frozenset[str], enabled: Iterable[str] | None = None) -> tuple[Tool, ...]:
    """:func:`offered` for a key holding ``scopes`` (as :func:`relevant_scopes` gives them)."""
    allowed = None if enabled is None else frozenset(enabled)
    return tuple(
        tool
        for tool in TOOLS
        if tool.scopes <= scopes and (allowed is None or tool.name in allowed)
    )


def openai_tools(tools: Iterable[Tool]) -> list[dict[str, Any]]:
    """The tools in OpenAI's ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            },
        }
        for tool in tools
    ]
