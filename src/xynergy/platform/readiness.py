"""Readiness answered from a recent backend check, one check at a time.

``/readyz`` is public and load balancers poll it, so it must cost next to
nothing however often it is called: a check of every backend runs at most once
per ``readiness_cache_seconds``, and callers arriving while one is in flight
wait for that one instead of starting their own (singleflight). The state is one
result and one task, whatever the number of callers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from xynergy.platform.shared_window import SharedWindow

__all__ = ["Readiness", "ReadinessProbe"]

Checks = dict[str, str]


@dataclass(frozen=True, slots=True)
class Readiness:
    """One backend check: ``{name: "ok" | "error: ..."}`` and when it finished."""

    checks: Checks
    checked_at: float  # time.monotonic()

    @property
    def ready(self) -> bool:
        """Whether every backend answered."""
        return all(value == "ok" for value in self.checks.values())

    def age(self, now: float | None = None) -> float:
        """Seconds since the check finished."""
        return max(0.0, (time.monotonic() if now is None else now) - self.checked_at)


class ReadinessProbe:
    """Runs ``check`` at most once per ``max_age`` seconds, shared by concurrent callers."""

    def __init__(
        self,
        check: Callable[[], Awaitable[Checks]],
        *,
        max_age: float,
        on_check: Callable[[], None] | None = None,
    ) -> None:
        self._check = check
        self._on_check = on_check
        # The window holds the one Readiness every caller of a check shares.
        self._window: SharedWindow[Readiness] = SharedWindow(
            window_seconds=max_age, task_name="readiness-check"
        )

    async def current(self) -> Readiness:
        """The last result if fresh enough, else the (one) check in flight."""
        return (await self._window.current(self._run)).value

    async def _run(self) -> Readiness:
        if self._on_check is not None:
            self._on_check()
        return Readiness(await self._check(), time.monotonic())

    async def close(self) -> None:
        """Cancel a check still in flight (at shutdown)."""
        await self._window.close()
