"""Locale tags in one canonical spelling, so ``en_us`` and ``en-US`` are one locale."""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["canonical_locale"]

# language (2-3 letters), optional script (4 letters), optional region (2 letters or 3 digits)
_LOCALE = re.compile(r"([A-Za-z]{2,3})(?:[-_]([A-Za-z]{4}))?(?:[-_]([A-Za-z]{2}|[0-9]{3}))?")
# Locales in use are few; the bound only stops a flood of distinct junk from growing it.
_CACHE_SIZE = 512


@lru_cache(maxsize=_CACHE_SIZE)
def canonical_locale(raw: str) -> str | None:
    """``en-us`` -> ``en-US``, ``zh_hant_tw`` -> ``zh-Hant-TW``; None unless BCP-47-like."""
    match = _LOCALE.fullmatch(raw.strip())
    if match is None:
        return None
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)
