"""A JSON value of any shape, with every part bounded: for fields that carry data
whose shape the platform does not own (a workflow's input, a step's mapping).

Each string is ``RawText`` (storable: no NUL, no lone surrogate), each list and
object has a maximum size, and the whole value is further bounded by the request
body limit and by the size checks of the field that uses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Union

from pydantic import Field
from typing_extensions import TypeAliasType

from xynergy.platform.text import RawText

__all__ = [
    "JSON_KEY_MAX_CHARS",
    "JSON_LIST_MAX_ITEMS",
    "JSON_OBJECT_MAX_KEYS",
    "JsonObject",
    "JsonValue",
]

JSON_STRING_MAX_CHARS = 100_000
JSON_KEY_MAX_CHARS = 200
JSON_LIST_MAX_ITEMS = 1_000
JSON_OBJECT_MAX_KEYS = 200

JsonKey = Annotated[str, RawText(max_length=JSON_KEY_MAX_CHARS, min_length=1)]

if TYPE_CHECKING:
    # The shape, for the type checker (which cannot follow TypeAliasType recursion).
    JsonValue = Union[  # noqa: UP007
        str, bool, int, float, None, list["JsonValue"], dict[str, "JsonValue"]
    ]
else:
    JsonValue = TypeAliasType(
        "JsonValue",
        Union[  # noqa: UP007 - a recursive alias needs the Union spelled out
            Annotated[str, RawText(max_length=JSON_STRING_MAX_CHARS)],
            bool,
            int,
            float,
            None,
            Annotated[list["JsonValue"], Field(max_length=JSON_LIST_MAX_ITEMS)],
            Annotated[dict[JsonKey, "JsonValue"], Field(max_length=JSON_OBJECT_MAX_KEYS)],
        ],
    )

JsonObject = Annotated[dict[JsonKey, JsonValue], Field(max_length=JSON_OBJECT_MAX_KEYS)]
