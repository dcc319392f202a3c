"""OpenAPI links from what answers a resource to what works on it, read off the paths.

An operation answering a resource (a create ``POST <collection>``, an action on
the collection such as ``POST /campaigns/generate``, a read, change or action on
one member, or a list through its first item ``items/0``) is linked to every
operation under ``<collection>/{<member>}``: read it, change it, delete it, act
on it. Each path parameter of the target is filled from the source's own request
(``/campaigns/{campaign_id}/steps`` passes ``campaign_id`` on), else from the
answered field of the same name (``public_id``, ``business_type``), else, for the
member's ``{id}``/``{<x>_id}``, from its ``id``; a target needing anything else
gets no link rather than a guessed value. Nothing is written per endpoint.

Clients and schemathesis' stateful phase follow these links to chain calls on a
resource that exists instead of guessing ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["add_resource_links"]

_PATH_PARAMETER = re.compile(r"^\{(?P<name>[^}]+)\}$")
_SUCCESS_STATUSES = ("201", "200")
_JSON = "application/json"
_ID = "id"
# What can answer a resource: a create or an action (POST), an upsert or a change
# (PUT, PATCH), a list or a read (GET). A DELETE answers nothing to follow.
_PRODUCING_METHODS = frozenset({"post", "put", "patch", "get"})
_ITEMS = "items"
_LIST_POSITION = "0"


@dataclass(frozen=True, slots=True)
class _Operation:
    path: str
    method: str
    spec: dict[str, Any]

    @property
    def segments(self) -> list[str]:
        return self.path.strip("/").split("/")

    def path_parameters(self) -> set[str]:
        return _parameters_of(self.segments)


def _is_id_parameter(name: str) -> bool:
    return name == _ID or name.endswith(f"_{_ID}")


def _resolve(document: Mapping[str, Any], schema: Any) -> dict[str, Any]:
    while isinstance(schema, dict) and "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        schema = target
    return schema if isinstance(schema, dict) else {}


def _scalar_fields(document: Mapping[str, Any], schema: Any) -> set[str]:
    """The string and integer fields of an object schema (what a path can carry)."""
    properties = _resolve(document, schema).get("properties", {})
    return {
        name
        for name, field in properties.items()
        if _resolve(document, field).get("type") in ("string", "integer")
    }


def _resources(
    document: Mapping[str, Any], schema: Any, *, listing: bool
) -> list[tuple[str, set[str]]]:
    """Where the resource may be in a body of ``schema``, with its fields: the body
    itself or a required field holding it (a new key with its secret: ``/key``),
    or for a list its first item (``/items/0``)."""
    resolved = _resolve(document, schema)
    properties = resolved.get("properties", {})
    candidates: list[tuple[str, Any]]
    if listing:
        items = _resolve(document, properties.get(_ITEMS))
        if items.get("type") != "array":
            return []
        candidates = [(f"/{_ITEMS}/{_LIST_POSITION}", items.get("items"))]
    else:
        candidates = [("", resolved)] + [
            (f"/{name}", field)
            for name, field in properties.items()
            if name in resolved.get("required", ())
        ]
    return [
        (pointer, fields)
        for pointer, field in candidates
        if (fields := _scalar_fields(document, field))
    ]


def _success(operation: _Operation) -> dict[str, Any] | None:
    responses = operation.spec.get("responses", {})
    for status in _SUCCESS_STATUSES:
        if status in responses:
            response: dict[str, Any] = responses[status]
            return response
    return None


def _operations(document: Mapping[str, Any]) -> list[_Operation]:
    return [
        _Operation(path, method, spec)
        for path, item in document.get("paths", {}).items()
        for method, spec in item.items()
        if isinstance(spec, dict) and "operationId" in spec
    ]


def _consumers(
    collection: list[str], known: set[str], operations: list[_Operation], fields: set[str]
) -> Iterator[tuple[_Operation, dict[str, str]]]:
    """Operations on one member of the collection at ``collection`` (path segments),
    with where each path parameter comes from: the collection's own request
    (``known``), a field of the resource of the same name, or its ``id``."""
    depth = len(collection)
    for operation in operations:
        segments = operation.segments
        if len(segments) <= depth or segments[:depth] != collection:
            continue
        member = _PATH_PARAMETER.match(segments[depth])
        if member is None:
            continue
        sources: dict[str, str] = {}
        for name in sorted(operation.path_parameters()):
            if name in known:
                sources[name] = f"$request.path.{name}"
            elif name in fields:
                sources[name] = f"#/{name}"
            elif name == member["name"] and _is_id_parameter(name) and _ID in fields:
                sources[name] = f"#/{_ID}"
            else:
                break
        else:
            yield operation, sources


def _collections(source: _Operation) -> Iterator[tuple[list[str], set[str], bool]]:
    """Where the resource ``source`` answers lives, what of its path the source's own
    request knows, and whether the answer is a list: a list's or a create's own
    path; for an action on a collection (``POST /campaigns/generate``) the
    collection's; for an operation on one member (``POST /campaigns/{id}/approve``)
    the collection the member is in, its id then read from the answer."""
    segments = source.segments
    parameters = source.path_parameters()
    if not _PATH_PARAMETER.match(segments[-1]):
        yield segments, parameters, source.method == "get"
        if source.method != "get" and len(segments) > 1:
            yield segments[:-1], parameters, False
    members = [i for i, segment in enumerate(segments) if _PATH_PARAMETER.match(segment)]
    if members:
        collection = segments[: members[-1]]
        yield collection, parameters & _parameters_of(collection), False


def _parameters_of(segments: list[str]) -> set[str]:
    return {match["name"] for segment in segments if (match := _PATH_PARAMETER.match(segment))}


def add_resource_links(document: dict[str, Any]) -> None:
    """Add the links described in the module docstring to ``document``, in place."""
    operations = _operations(document)
    for source in operations:
        success = _success(source) if source.method in _PRODUCING_METHODS else None
        if success is None:
            continue
        schema = success.get("content", {}).get(_JSON, {}).get("schema")
        links: dict[str, Any] = {}
        for collection, known, listing in _collections(source):
            for pointer, fields in _resources(document, schema, listing=listing):
                for target, sources in _consumers(collection, known, operations, fields):
                    if target is source:
                        continue
                    parameters = {
                        name: value
                        if value.startswith("$")
                        else f"$response.body#{pointer}{value[1:]}"
                        for name, value in sources.items()
                    }
                    links.setdefault(
                        target.spec["operationId"],
                        {"operationId": target.spec["operationId"], "parameters": parameters},
                    )
                if links:
                    break
            if links:
                break
        if links:
            success.setdefault("links", {}).update(links)
