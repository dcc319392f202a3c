"""The in-process copies in front of the shared cache (L1): a bounded dict with expiry.

A plain ``OrderedDict`` rather than a second cashews cache: a hit here is the
whole cost of a cached request's cache work, and cashews' middleware chain costs
several times a dict lookup. Entries expire on their own TTL, the least recently
used go first past the bound, and the owner drops entries when told they changed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator

__all__ = ["LocalEntries"]


class LocalEntries:
    """``key -> text`` with a per-entry expiry and at most ``max_entries`` entries."""

    def __init__(self, max_entries: int, *, on_evict: Callable[[str], None] | None = None) -> None:
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._max_entries = max_entries
        # Told the key of each entry dropped for room (not expired, not dropped).
        self._on_evict = on_evict

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def max_entries(self) -> int:
        """The bound now (lowered under memory pressure: platform/resources.py)."""
        return self._max_entries

    def resize(self, max_entries: int) -> None:
        """Hold at most ``max_entries`` from now on, dropping the least recently used."""
        self._max_entries = max(1, max_entries)
        while len(self._entries) > self._max_entries:
            self._evict_oldest()

    def get(self, key: str) -> str | None:
        """The live copy of ``key``, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def put(self, key: str, text: str, ttl: float) -> None:
        """Keep ``text`` for ``ttl`` seconds (or until dropped or evicted)."""
        self._entries[key] = (text, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        if len(self._entries) > self._max_entries:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        key, _entry = self._entries.popitem(last=False)
        if self._on_evict is not None:
            self._on_evict(key)

    def keys(self) -> Iterator[str]:
        """The keys held now (expired ones included until next touched)."""
        return iter(list(self._entries))

    def drop(self, key: str) -> None:
        """Forget ``key`` (it changed elsewhere)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
