"""The shared cache's in-process entries and evictions per namespace, in this process."""

from __future__ import annotations

from dataclasses import dataclass

from xynergy.platform.cache import PlatformCache

__all__ = ["NamespaceSize", "namespace_sizes"]


@dataclass(slots=True)
class NamespaceSize:
    """One namespace in this process: entries held now, entries evicted since start."""

    entries: int = 0
    evictions: int = 0


def namespace_sizes(cache: PlatformCache) -> dict[str, NamespaceSize]:
    """The in-process (L1) entries and evictions of each namespace of ``cache``.

    One pass over the entries' keys: at most ``cache_memory_max_entries`` of them.
    """
    sizes: dict[str, NamespaceSize] = {}
    for key in cache.local_entries.keys():
        namespace = cache.namespace_of(key)
        if namespace is not None:
            sizes.setdefault(namespace, NamespaceSize()).entries += 1
    for namespace, evicted in cache.evictions.items():
        sizes.setdefault(namespace, NamespaceSize()).evictions = evicted
    return sizes
