"""The platform's bounded in-process caches and maps, by name, with their bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from xynergy.platform.runtime import Platform

__all__ = ["CacheView", "platform_caches"]


@dataclass(frozen=True, slots=True)
class CacheView:
    """How to read one cache's size and bound."""

    name: str
    entries: Callable[[], int]
    max_entries: Callable[[], int]
    configured_max_entries: int


def platform_caches(platform: Platform) -> list[CacheView]:
    """The caches the platform exposes sizes of (names are metric labels: from code only)."""
    settings = platform.settings
    local = platform.cache.local_entries
    return [
        CacheView(
            "cache-local",
            lambda: len(local),
            lambda: local.max_entries,
            settings.cache_memory_max_entries,
        ),
        CacheView(
            "cache-inflight",
            lambda: platform.cache.inflight,
            lambda: settings.cache_max_inflight,
            settings.cache_max_inflight,
        ),
        CacheView(
            "breaker-destinations",
            lambda: platform.breakers.destinations_held,
            lambda: settings.breaker_max_destinations,
            settings.breaker_max_destinations,
        ),
    ]
