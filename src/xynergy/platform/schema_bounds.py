"""Schema bounds whose value is a setting, written into the OpenAPI document.

A bound the server enforces from a setting (a page size at most
``page_size_max``, at most ``intake.form_origins_max`` origins) is known only
when the app is built, not when the model or parameter is declared. Declare it
with :func:`setting_bounds` as the field's ``json_schema_extra``; the contract
(``xynergy.platform.openapi``) replaces the marker with the setting's value, so
the published schema states what the server really accepts.

``enum`` takes a setting listing the allowed values. A name is a platform
setting (``page_size_max``) or, dotted, a setting of an object the service keeps
on ``app.state`` (``intake.form_origins_max``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "SETTING_BOUNDS_EXTENSION",
    "apply_setting_bounds",
    "decimal_schema",
    "setting_bounds",
]

SETTING_BOUNDS_EXTENSION = "x-xynergy-setting-bounds"
# Which JSON Schema type each bound keyword applies to, so a bound on an optional
# value (``anyOf: [{type: integer}, {type: null}]``) lands on the right branch.
_KEYWORD_TYPES = {
    "minimum": ("integer", "number"),
    "maximum": ("integer", "number"),
    "minLength": ("string",),
    "maxLength": ("string",),
    "minItems": ("array",),
    "maxItems": ("array",),
    # The allowed values, from a setting listing them.
    "enum": ("string", "integer"),
}


def setting_bounds(**bounds: str) -> dict[str, Any]:
    """``json_schema_extra`` declaring JSON Schema ``bounds`` (keyword -> setting name)."""
    unknown = sorted(set(bounds) - set(_KEYWORD_TYPES))
    if unknown:
        raise ValueError(f"not a bound keyword: {', '.join(unknown)}")
    return {SETTING_BOUNDS_EXTENSION: dict(bounds)}


def apply_setting_bounds(document: Any, value_of: Callable[[str], Any]) -> None:
    """Replace every marker in ``document`` with its bounds, in place."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        bounds = node.pop(SETTING_BOUNDS_EXTENSION, None)
        if bounds:
            for keyword, name in bounds.items():
                _bound(node, keyword, value_of(name))
        stack.extend(node.values())


def _bound(schema: dict[str, Any], keyword: str, value: Any) -> None:
    types = _KEYWORD_TYPES[keyword]
    if schema.get("type") in types:
        schema[keyword] = sorted(value) if keyword == "enum" else value
    for branch in schema.get("anyOf", ()):
        if isinstance(branch, dict):
            _bound(branch, keyword, value)


def decimal_schema(
    *, integer_digits: int, decimal_places: int, maximum: int | None = None
) -> dict[str, Any]:
    """The JSON Schema of a non-negative ``Decimal`` field as the server reads it.

    Pydantic publishes ``number`` or any string; the server takes a string of at
    most ``integer_digits`` digits and ``decimal_places`` decimals, or a number.
    Declared: that string, or an integer (a JSON number with few enough decimals is
    accepted too, but a float rarely has an exact decimal form, so it is left out).
    """
    integer: dict[str, Any] = {"type": "integer", "minimum": 0}
    if maximum is not None:
        integer["maximum"] = maximum
    fraction = f"(\\.[0-9]{{1,{decimal_places}}})?" if decimal_places else ""
    text = {"type": "string", "pattern": f"^[0-9]{{1,{integer_digits}}}{fraction}$"}
    return {"anyOf": [integer, text]}
