"""What starts a reload besides the admin call: SIGHUP, and secret files that change.

Both run for the life of a Platform: the poller is one named task, cancelled at
shutdown; the SIGHUP handler is installed on the running loop (uvicorn owns
SIGINT and SIGTERM, not SIGHUP, whose default action would end the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

from xynergy.platform.logging import get_logger
from xynergy.platform.secrets.registry import SecretsRegistry, Trigger
from xynergy.platform.secrets.source import FileSignature, file_signature

__all__ = ["SecretsWatcher"]

log = get_logger(__name__)


class SecretsWatcher:
    """Reloads ``registry`` on SIGHUP and when a watched file's signature changes."""

    def __init__(self, registry: SecretsRegistry, *, poll_interval_seconds: float) -> None:
        self._registry = registry
        self._interval = poll_interval_seconds
        self._poller: asyncio.Task[None] | None = None
        self._signalled: asyncio.Task[None] | None = None
        self._again = False
        self._handles_sighup = False

    def start(self, *, sighup: bool) -> None:
        """Start polling (unless the interval is 0) and, if asked, handle SIGHUP."""
        if self._interval > 0:
            self._poller = asyncio.create_task(self._poll_forever(), name="secrets-poller")
        if sighup:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
                self._handles_sighup = True
            except (NotImplementedError, RuntimeError, ValueError):
                # Not the main thread (an embedding server) or no signals here.
                log.info("secrets.sighup_unavailable")

    async def stop(self) -> None:
        """Stop polling, drop the SIGHUP handler and wait for a reload under way."""
        if self._handles_sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._handles_sighup = False
        for task in (self._poller, self._signalled):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _on_sighup(self) -> None:
        # One reload task at a time; signals arriving meanwhile ask for one more
        # pass, so a burst of SIGHUPs costs at most two reloads.
        if self._signalled is not None and not self._signalled.done():
            self._again = True
            return
        self._signalled = asyncio.create_task(self._reload_on_signal(), name="secrets-sighup")

    async def _reload_on_signal(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self._reload("sighup")

    async def _poll_forever(self) -> None:
        seen: dict[Path, FileSignature | None] = {}
        while True:
            await asyncio.sleep(self._interval)
            known = {
                path: seen.get(path, signature)
                for path, signature in self._registry.watched_files().items()
            }
            # A stat can block (a network mount): off the loop, all files in one go.
            now = await asyncio.to_thread(_signatures, list(known))
            # Remembered even when the reload fails: a broken file is reported once,
            # and again only when it changes.
            seen = now
            if now != known:
                await self._reload("poll")

    async def _reload(self, trigger: Trigger) -> None:
        try:
            await self._registry.reload(trigger)
        except Exception:
            # A part that raised something unexpected must not end the poller.
            log.exception("secrets.reload_crashed", trigger=trigger)


def _signatures(paths: list[Path]) -> dict[Path, FileSignature | None]:
    return {path: file_signature(path) for path in paths}
