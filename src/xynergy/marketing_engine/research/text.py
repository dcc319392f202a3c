"""Phrase normalisation and tokens, shared by the sources, scoring and clustering."""

from __future__ import annotations

import re
import unicodedata

from xynergy.platform.locales import canonical_locale

__all__ = ["STOPWORDS", "content_tokens", "normalise_locale", "normalise_phrase", "stem"]

STOPWORDS = frozenset(
    "a an and are as at be by for from in is it of on or the to with vs your my our "
    "de la le el en y".split()
)
# Anything but letters, digits, spaces, hyphens, apostrophes and ampersands.
_NOT_PHRASE = re.compile(r"[^\w\s'&-]|_")
_MIN_STEM_CHARS = 4


def normalise_phrase(raw: str) -> str:
    """NFKC, lowercase, punctuation dropped, whitespace collapsed (as the ASO Engine stores it)."""
    text = _NOT_PHRASE.sub(" ", unicodedata.normalize("NFKC", raw).lower())
    return " ".join(word.strip("'-&") for word in text.split() if word.strip("'-&"))


def stem(word: str) -> str:
    """A light plural fold ("mats" -> "mat"), enough for lexical similarity."""
    if len(word) >= _MIN_STEM_CHARS and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_tokens(phrase: str) -> frozenset[str]:
    """The stemmed words of a normalised phrase, stopwords left out."""
    return frozenset(stem(w) for w in phrase.split() if w not in STOPWORDS)


# language[-Script][-REGION], as the ASO Engine stores locales.


def normalise_locale(raw: str) -> str | None:
    """``en-us`` -> ``en-US``; None unless BCP-47-like."""
    return canonical_locale(raw)
