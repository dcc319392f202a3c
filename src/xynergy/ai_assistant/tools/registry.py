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

__all__ = ["RUNTIME", "TOOLS", "Call", "Tool", "offered", "openai_tools", "tool_named"]

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
        name="workflow_progress",
        description="Progress of a workflow run: its status and each step's.",
        parameters=_object(
            {"run_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}, required=["run_id"]
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
