"""The in-process L1 copies: expiry, the bound, dropping."""

from __future__ import annotations

import time

import pytest

from xynergy.platform.local_cache import LocalEntries


class TestLocalEntries:
    def test_an_entry_lives_for_its_own_ttl(self, monkeypatch: pytest.MonkeyPatch) -> None:
        now = [1000.0]
        monkeypatch.setattr(time, "monotonic", lambda: now[0])
        entries = LocalEntries(10)
        entries.put("short", "a", ttl=5)
        entries.put("long", "b", ttl=50)
        now[0] += 6
        assert entries.get("short") is None
        assert entries.get("long") == "b"
        assert len(entries) == 1

    def test_past_the_bound_the_least_recently_used_goes(self) -> None:
        entries = LocalEntries(3)
        for key in "abc":
            entries.put(key, key, ttl=60)
        assert entries.get("a") == "a"  # now the most recently used
        entries.put("d", "d", ttl=60)
        assert entries.get("b") is None
        assert [entries.get(k) for k in "acd"] == ["a", "c", "d"]
        assert len(entries) == 3

    def test_drop_and_clear(self) -> None:
        entries = LocalEntries(10)
        entries.put("a", "1", ttl=60)
        entries.put("b", "2", ttl=60)
        entries.drop("a")
        entries.drop("missing")
        assert entries.get("a") is None
        assert entries.get("b") == "2"
        entries.clear()
        assert len(entries) == 0
