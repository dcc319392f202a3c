"""The operations a workflow step may call: an allow-list, never a proxy to any path.

Each operation names one endpoint of another service and the scopes it needs.
Its input is a JSON object: keys named in the path template fill the path (as
safe identifiers), the rest go into the query string (reads) or the JSON body
(writes). An ``ndjson`` operation (a bulk import) sends its input's ``rows``
(JSON objects) as JSON lines and the other keys as the query string. Nothing
else is reachable from a workflow.

An operation's scopes are all the step's internal token carries, so they cover
what the endpoint checks *and* what it needs for the calls it makes to other
services on the caller's behalf (research reads keywords and asks the AI).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BUILT_IN_OPERATIONS",
    "Catalogue",
    "Operation",
    "OperationInputError",
    "OperationRequest",
]

# Path parameters are resource ids and slugs: nothing that could change the path.
_PATH_VALUE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# The input key whose JSON objects become the lines of an ndjson body.
ROWS = "rows"
_NDJSON = "application/x-ndjson"

Method = Literal["GET", "POST", "PATCH", "DELETE"]
BodyFormat = Literal["json", "ndjson"]


class OperationInputError(ValueError):
    """A step's input cannot form a call of its operation (a permanent failure)."""


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """One call of an operation: a JSON body, or raw ``content`` of ``content_type``."""

    path: str
    params: dict[str, str] | None
    json: dict[str, Any] | None
    content: bytes | None = None
    content_type: str | None = None


def _query(operation: str, values: Mapping[str, Any]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for name, value in values.items():
        if isinstance(value, bool):
            params[name] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            params[name] = str(value)
        elif value is not None:
            raise OperationInputError(f"{operation}: input.{name} must be a scalar.")
    return params or None


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    service: str
    method: Method
    path: str
    scopes: frozenset[str]
    description: str
    # Input keys a call cannot do without besides the path's (e.g. a required query
    # parameter): a definition whose step leaves one out is refused at creation.
    required_query: tuple[str, ...] = ()
    body: BodyFormat = "json"
    path_params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_params", tuple(_PLACEHOLDER.findall(self.path)))

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    @property
    def required_inputs(self) -> tuple[str, ...]:
        """Input keys every step of this operation must map."""
        rows = (ROWS,) if self.body == "ndjson" else ()
        return (*self.path_params, *self.required_query, *rows)

    def request_parts(self, payload: Mapping[str, Any]) -> OperationRequest:
        """The call made with ``payload``.

        Raises:
            OperationInputError: a path parameter is missing or not an identifier, a
                required input is missing, a query value is not a scalar, or an
                ndjson operation's rows are not a list of objects.
        """
        if not isinstance(payload, Mapping):
            raise OperationInputError(f"{self.name}: the input must be a JSON object.")
        values = dict(payload)
        path = self.path
        for name in self.path_params:
            value = values.pop(name, None)
            if not isinstance(value, str) or not _PATH_VALUE.fullmatch(value):
                raise OperationInputError(
                    f"{self.name}: input.{name} must be an identifier (1-64 of A-Z a-z 0-9 _ -)."
                )
            path = path.replace("{" + name + "}", value)
        missing = [name for name in self.required_query if values.get(name) is None]
        if missing:
            raise OperationInputError(f"{self.name}: input {missing} required.")
        if self.body == "ndjson":
            content = self._lines(values.pop(ROWS, None))
            return OperationRequest(path, _query(self.name, values), None, content, _NDJSON)
        if self.writes:
            return OperationRequest(path, None, values)
        return OperationRequest(path, _query(self.name, values), None)

    def _lines(self, rows: Any) -> bytes:
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise OperationInputError(f"{self.name}: input.{ROWS} must be a list of objects.")
        # One compact JSON object a line: no row can break into the next.
        return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows).encode()


class Catalogue:
    """The operations known to one runtime, by name."""

    def __init__(self, operations: Iterable[Operation]) -> None:
        self._operations = {operation.name: operation for operation in operations}

    def get(self, name: str) -> Operation | None:
        return self._operations.get(name)

    def names(self) -> list[str]:
        return sorted(self._operations)

    def __iter__(self) -> Iterator[Operation]:
        return iter(self._operations.values())

    def with_operations(self, *extra: Operation) -> Catalogue:
        """This catalogue plus ``extra`` (a deployment's or a test's own services)."""
        return Catalogue([*self._operations.values(), *extra])


_ASO, _AI, _MARKETING, _INTAKE = (
    "aso-engine",
    "ai-routing-engine",
    "marketing-engine",
    "intelligence-gateway",
)

_KEYWORDS_READ = frozenset({"keywords:read"})
_KEYWORDS_WRITE = frozenset({"keywords:write"})
_CAMPAIGNS_WRITE = frozenset({"campaigns:write"})
# Research reads the tenant's keywords and trending movements (ASO Engine) and asks
# the AI Routing Engine for ideas. Content coverage (content:read) is left out on
# purpose: the research works without it, and a run would otherwise need it too.
_RESEARCH = frozenset({"marketing:research", "keywords:read", "ai:generate"})

BUILT_IN_OPERATIONS = Catalogue(
    [
        Operation(
            "aso.create_content",
            _ASO,
            "POST",
            "/api/content",
            frozenset({"content:write"}),
            "Create a content item.",
        ),
        Operation(
            "aso.track_keyword",
            _ASO,
            "POST",
            "/api/keywords",
            _KEYWORDS_WRITE,
            "Start tracking one keyword (phrase, locale, tags, target_url, intent).",
        ),
        Operation(
            "aso.import_keywords",
            _ASO,
            "POST",
            "/api/keywords/bulk-import",
            _KEYWORDS_WRITE,
            "Track many keywords at once: input.rows (objects of phrase, locale, tags, "
            "target_url, intent) sent as JSON lines; mode (all_or_nothing or best_effort) "
            "and locale (the rows' default) as query parameters. Answers the import report.",
            body="ndjson",
        ),
        Operation(
            "aso.record_rankings",
            _ASO,
            "POST",
            "/api/rankings",
            _KEYWORDS_WRITE,
            "Record ranking observations of tracked keywords (input.observations).",
        ),
        Operation(
            "aso.trending",
            _ASO,
            "GET",
            "/api/keywords/trending",
            _KEYWORDS_READ,
            "The keywords whose rankings moved most over input.window days (a configured "
            "window); optional direction, engine, locale, limit.",
            required_query=("window",),
        ),
        Operation(
            "aso.list_keywords",
            _ASO,
            "GET",
            "/api/keywords",
            _KEYWORDS_READ,
            "One page of tracked keywords (filters locale, tag, intent, q; limit, cursor).",
        ),
        Operation(
            "ai.generate",
            _AI,
            "POST",
            "/api/generate/intelligent",
            frozenset({"ai:generate"}),
            "Generate text for a task through the AI Routing Engine (prompt or messages); "
            "a repeated call is answered from its cache.",
        ),
        Operation(
            "marketing.research",
            _MARKETING,
            "POST",
            "/keywords/research",
            _RESEARCH,
            "Keyword suggestions from seed topics (seeds, description, locale, limit); "
            "tracks nothing (see marketing.track_researched).",
        ),
        Operation(
            "marketing.track_researched",
            _MARKETING,
            "POST",
            "/keywords/research",
            _RESEARCH | _KEYWORDS_WRITE,
            "Keyword research that also tracks the chosen suggestions in the ASO Engine "
            "(add_to_tracked: a list of phrases, or true for every new one).",
        ),
        Operation(
            "marketing.generate_campaign",
            _MARKETING,
            "POST",
            "/campaigns/generate",
            _CAMPAIGNS_WRITE | {"ai:generate"},
            "Generate a draft campaign from a template, personalised by the AI Routing Engine.",
        ),
        Operation(
            "marketing.approve_campaign",
            _MARKETING,
            "POST",
            "/campaigns/{campaign_id}/approve",
            _CAMPAIGNS_WRITE,
            "Approve a draft campaign.",
        ),
        Operation(
            "marketing.activate_campaign",
            _MARKETING,
            "POST",
            "/campaigns/{campaign_id}/activate",
            _CAMPAIGNS_WRITE,
            "Activate an approved campaign.",
        ),
        Operation(
            "marketing.performance",
            _MARKETING,
            "GET",
            "/analytics/performance",
            # Each section reads its own source: without a source's scope the
            # section would only say "forbidden".
            frozenset({"analytics:read", "content:read", "keywords:read", "ai:usage"}),
            "Content, keyword movement, campaigns and AI spend over input.window days.",
        ),
        Operation(
            "intake.stats",
            _INTAKE,
            "GET",
            "/api/stats",
            frozenset({"intake:read"}),
            "Intake submission counts by kind, status, source and day (since, until, sources).",
        ),
    ]
)
