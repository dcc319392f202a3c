"""One rule for the text a client sends, applied by the schema types themselves.

Every string field of a request schema is one of these (or is constrained by a
pattern, a ``Literal`` or an enum); ``tests/platform/test_request_schemas.py``
walks every route of every service and fails on a field that is not::

    title: Annotated[str, PlainText(max_length=1000, min_length=1)]
    body: Annotated[str, RichText(max_length=10_000_000)]
    prompt: Annotated[str, RawText(max_length=10_000_000, allow_nul=True)]

``PlainText``
    Display text: stripped, NFC, no control characters (tab and line breaks only
    when ``multiline``), and no markup: tags are removed and ``& < >`` escaped
    (``nh3``), so the stored value is safe to insert into HTML as it is.
``RichText``
    Display markup: ``nh3``'s allowlist of tags and attributes, the rest removed.
``RawText``
    Data rather than display (search terms, prompts, addresses and URLs that the
    owning service validates): kept as sent.

All three require ``max_length``, counted on what the client sent, and refuse
NUL (PostgreSQL cannot store it; ``RawText(allow_nul=True)`` for text that is
never stored) and lone UTF-16 surrogates. Sanitising can lengthen a value
(``&`` becomes ``&amp;``); one that no longer fits ``stored_max_length``
(default: ``max_length``, the column size) is refused rather than cut. Services
that check a configured, tighter bound on what was sent use :func:`sent_length`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal, cast

import nh3
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from xynergy.platform.input_text import is_unicode, text_problem

__all__ = [
    "MAX_ESCAPE_EXPANSION",
    "TEXT_KIND_KEY",
    "PlainText",
    "RawText",
    "RichText",
    "SanitisedText",
    "escaped_within",
    "plain_text",
    "sent_length",
]

# Escaping turns one character into at most five ("&" -> "&amp;"): the bound of
# a sanitised column that must hold whatever fits the sent value's bound.
MAX_ESCAPE_EXPANSION = 5
# Key of the core-schema metadata naming the kind of text a field holds.
TEXT_KIND_KEY = "xynergy_text"
TextKind = Literal["plain", "rich", "raw"]

# C0 and C1 controls; a multi-line field keeps tab, line feed and carriage return.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class SanitisedText(str):
    """A sanitised string that remembers how long it was as sent."""

    sent_length: int

    def __new__(cls, value: str, sent_length: int) -> SanitisedText:
        text = super().__new__(cls, value)
        text.sent_length = sent_length
        return text


def sent_length(text: str) -> int:
    """How many characters the client sent for ``text`` (its length if not sanitised)."""
    return getattr(text, "sent_length", len(text))


def plain_text(value: str) -> str:
    """``value`` without markup, with ``& < >`` escaped: safe to insert into HTML."""
    return nh3.clean(value, tags=set())


def _invalid(kind: str, message: str, context: dict[str, Any] | None = None) -> Exception:
    return PydanticCustomError(kind, message, context)


def _refuse_unsafe(value: str, multiline: bool) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise _invalid("string_unsafe_text", problem)
    control = _CONTROL_EXCEPT_LINES if multiline else _CONTROL
    if control.search(value):
        raise _invalid("string_control_characters", "control characters are not allowed")


def _str_schema(
    source: Any, handler: GetCoreSchemaHandler, *, max_length: int, min_length: int, strip: bool
) -> CoreSchema:
    schema = handler(source)
    if schema.get("type") != "str":
        raise TypeError("the platform text types annotate str only")
    bounded: dict[str, Any] = dict(schema)
    bounded["max_length"] = min(bounded.get("max_length") or max_length, max_length)
    if min_length:
        bounded["min_length"] = max(bounded.get("min_length") or 0, min_length)
    if strip:
        bounded["strip_whitespace"] = True
    return cast(CoreSchema, bounded)


def _validated(function: Any, inner: CoreSchema, kind: TextKind) -> CoreSchema:
    schema = core_schema.no_info_after_validator_function(function, inner)
    schema["metadata"] = {TEXT_KIND_KEY: kind}
    return schema


def _fitting(clean: str, max_length: int) -> str:
    if len(clean) > max_length:
        raise _invalid(
            "string_too_long",
            "String should have at most {max_length} characters once its HTML "
            "special characters are escaped",
            {"max_length": max_length},
        )
    return clean


def escaped_within(value: str, max_length: int) -> str:
    """:func:`plain_text` of an already validated value (an address, a URL), refused with a
    pydantic error rather than cut when escaping makes it longer than ``max_length``."""
    return _fitting(plain_text(value), max_length)


def _sanitised(
    clean: str, *, sent: int, min_length: int, max_length: int, stored_max_length: int | None
) -> SanitisedText:
    _fitting(clean, stored_max_length or max_length)
    if len(clean) < min_length:
        raise _invalid(
            "string_too_short",
            "String should have at least {min_length} characters once markup is removed",
            {"min_length": min_length},
        )
    return SanitisedText(clean, sent)


def _nfc(value: str) -> str:
    return value if value.isascii() else unicodedata.normalize("NFC", value)


@dataclass(frozen=True, slots=True)
class PlainText:
    """Display text without markup (see the module docstring)."""

    max_length: int
    min_length: int = 0
    stored_max_length: int | None = None
    multiline: bool = False

    def clean(self, value: str) -> SanitisedText:
        """``value`` checked, NFC-normalised, stripped of markup and escaped."""
        _refuse_unsafe(value, self.multiline)
        return _sanitised(
            plain_text(_nfc(value)).strip(),
            sent=len(value),
            min_length=self.min_length,
            max_length=self.max_length,
            stored_max_length=self.stored_max_length,
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = _str_schema(
            source, handler, max_length=self.max_length, min_length=self.min_length, strip=True
        )
        return _validated(self.clean, inner, "plain")


@dataclass(frozen=True, slots=True)
class RichText:
    """Display markup kept to ``nh3``'s allowlist (see the module docstring)."""

    max_length: int
    min_length: int = 0
    stored_max_length: int | None = None

    def clean(self, value: str) -> SanitisedText:
        """``value`` checked, NFC-normalised and sanitised to the allowlist."""
        _refuse_unsafe(value, multiline=True)
        return _sanitised(
            nh3.clean(_nfc(value)),
            sent=len(value),
            min_length=self.min_length,
            max_length=self.max_length,
            stored_max_length=self.stored_max_length,
        )

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = _str_schema(
            source, handler, max_length=self.max_length, min_length=self.min_length, strip=False
        )
        return _validated(self.clean, inner, "rich")


@dataclass(frozen=True, slots=True)
class RawText:
    """Text that is data, not display: kept as sent (see the module docstring)."""

    max_length: int
    min_length: int = 0
    allow_nul: bool = False

    def check(self, value: str) -> str:
        """``value`` unchanged, once it is known to be storable (or, with ``allow_nul``,
        at least Unicode)."""
        if self.allow_nul:
            if not is_unicode(value):
                raise _invalid("string_unsafe_text", "lone UTF-16 surrogates are not allowed")
            return value
        problem = text_problem(value)
        if problem is not None:
            raise _invalid("string_unsafe_text", problem)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        inner = _str_schema(
            source, handler, max_length=self.max_length, min_length=self.min_length, strip=False
        )
        return _validated(self.check, inner, "raw")
