"""What makes a keyword valid, and its canonical form: shared by the API and the import.

Plain functions rather than Pydantic validators: the bulk import runs them on up
to ``import_max_rows`` rows, and the bounds come from ``AsoSettings`` at run time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

from xynergy.aso_engine.config import AsoSettings
from xynergy.platform.locales import canonical_locale

__all__ = [
    "INTENTS",
    "LOCALE_MAX_CHARS",
    "TAG_MAX_CHARS",
    "CleanKeyword",
    "KeywordInvalid",
    "clean_keyword",
    "normalise_locale",
    "normalise_phrase",
]

INTENTS = frozenset({"informational", "navigational", "commercial", "transactional"})
# Width of aso_keywords.locale; the pattern below cannot exceed it (3 + 5 + 4).
LOCALE_MAX_CHARS = 16
TAG_MAX_CHARS = 64
# Canonical intent strings, shared rather than one copy per imported row.
_INTENT_NAMES = {intent: intent for intent in INTENTS}
_URL_SCHEMES = frozenset({"http", "https"})
# language[-Script][-REGION], e.g. en, en-US, zh-Hant-TW, es-419.
# Control characters and lone surrogates: PostgreSQL refuses NUL in text and
# surrogates cannot be encoded; neither belongs in a keyword.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class KeywordInvalid(ValueError):
    """A keyword field breaks a rule; the message names the field, never echoes it."""


@dataclass(frozen=True, slots=True)
class CleanKeyword:
    """A keyword in canonical form, within every bound."""

    phrase: str
    locale: str
    tags: list[str]
    target_url: str | None
    intent: str | None


def normalise_phrase(raw: str) -> str:
    """NFKC, lowercase, whitespace collapsed to single spaces and stripped."""
    return " ".join(unicodedata.normalize("NFKC", raw).lower().split())


# Bounded; a file repeats a handful of locales, and returning one shared string
# per locale keeps an import's batch small.
def normalise_locale(raw: str) -> str:
    """``en-us`` -> ``en-US``; raises KeywordInvalid unless BCP-47-like."""
    locale = canonical_locale(raw)
    if locale is None:
        raise KeywordInvalid("locale must look like en, en-US, zh-Hant-TW or es-419")
    return locale


def _clean_phrase(raw: str, bounds: AsoSettings) -> str:
    phrase = normalise_phrase(raw)
    if not phrase:
        raise KeywordInvalid("phrase is empty")
    if len(phrase) > bounds.keyword_phrase_max_chars:
        raise KeywordInvalid(f"phrase is longer than {bounds.keyword_phrase_max_chars} characters")
    if _UNPRINTABLE.search(phrase):
        raise KeywordInvalid("phrase contains control characters")
    return phrase


def _clean_tags(raw: list[str], bounds: AsoSettings) -> list[str]:
    tags: list[str] = []
    for value in raw:
        tag = normalise_phrase(value)
        if not tag or tag in tags:
            continue
        if len(tag) > TAG_MAX_CHARS:
            raise KeywordInvalid(f"a tag is longer than {TAG_MAX_CHARS} characters")
        if _UNPRINTABLE.search(tag):
            raise KeywordInvalid("a tag contains control characters")
        tags.append(tag)
        if len(tags) > bounds.keyword_tags_max:
            raise KeywordInvalid(f"more than {bounds.keyword_tags_max} tags")
    return tags


def _clean_url(raw: str | None, bounds: AsoSettings) -> str | None:
    url = (raw or "").strip()
    if not url:
        return None
    if len(url) > bounds.url_max_chars:
        raise KeywordInvalid(f"target_url is longer than {bounds.url_max_chars} characters")
    if _UNPRINTABLE.search(url) or any(char.isspace() for char in url):
        raise KeywordInvalid("target_url contains spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise KeywordInvalid("target_url is not a valid URL") from exc
    if parts.scheme.lower() not in _URL_SCHEMES or not host:
        raise KeywordInvalid("target_url must be an http or https URL with a host")
    return url


def _clean_intent(raw: str | None) -> str | None:
    intent = (raw or "").strip().lower()
    if not intent:
        return None
    canonical = _INTENT_NAMES.get(intent)
    if canonical is None:
        raise KeywordInvalid("intent must be one of " + ", ".join(sorted(INTENTS)))
    return canonical


def clean_keyword(
    *,
    phrase: str,
    locale: str,
    tags: list[str],
    target_url: str | None,
    intent: str | None,
    bounds: AsoSettings,
) -> CleanKeyword:
    """The canonical keyword, or KeywordInvalid naming the first broken rule."""
    return CleanKeyword(
        phrase=_clean_phrase(phrase, bounds),
        locale=normalise_locale(locale),
        tags=_clean_tags(tags, bounds),
        target_url=_clean_url(target_url, bounds),
        intent=_clean_intent(intent),
    )
