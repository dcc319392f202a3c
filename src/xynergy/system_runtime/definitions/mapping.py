"""Building a step's input from the run's context, by JSON pointers only."""

from __future__ import annotations

from typing import Any

import jsonpointer

from xynergy.system_runtime.definitions.spec import REF

__all__ = ["MappingError", "resolve"]


class MappingError(ValueError):
    """A pointer named nothing in this run (e.g. an output without that field)."""


def resolve(value: Any, context: dict[str, Any]) -> Any:
    """``value`` with each ``{"$ref": pointer}`` replaced by what it points at."""
    if isinstance(value, dict):
        if set(value) == {REF}:
            pointer = str(value[REF])
            try:
                return jsonpointer.resolve_pointer(context, pointer)
            except jsonpointer.JsonPointerException as exc:
                raise MappingError(f"{pointer!r} names nothing in this run: {exc}") from None
        return {key: resolve(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, context) for item in value]
    return value
