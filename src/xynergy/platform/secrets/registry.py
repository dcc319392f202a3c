"""Secrets reloaded while the platform serves: one registry, parts that validate then swap.

The platform imports no service, so services register *parts* here: a part
reads everything it needs through a :class:`SecretReader` (secrets and config
files), builds its whole new configuration, validates it, and hands back one
function that swaps it in. Only when every read and check succeeded is the swap
called; otherwise the running configuration stays and the failure is reported
(log line, ``xynergy_secret_reload_failures_total``, the report returned to the
admin call). A process is therefore never half-configured.

Reloads are serialised (SIGHUP, the admin call and the file poller may ask at
once) and run on the event loop: the files are bounded by
``secret_file_max_bytes`` and read in well under a millisecond.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from xynergy.platform.logging import get_logger
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.secrets.source import (
    FileSignature,
    LoadedSecret,
    SecretError,
    file_signature,
    read_secret,
    read_text_file,
)

__all__ = [
    "ReloadFailure",
    "ReloadReport",
    "ReloadablePart",
    "SecretReader",
    "SecretsRegistry",
    "Swap",
    "Trigger",
]

log = get_logger(__name__)

Trigger = Literal["startup", "sighup", "admin", "poll"]
Swap = Callable[[], None]


class SecretReader:
    """What one part read during one reload; every read is bounded and remembered."""

    def __init__(self, *, max_bytes: int, environ: Mapping[str, str]) -> None:
        self._max_bytes = max_bytes
        self._environ = environ
        self.loaded: dict[str, LoadedSecret] = {}  # guard: allow XG005 one per name a part reads

    def secret(self, name: str) -> LoadedSecret | None:
        """``name`` from ``<name>_FILE`` or the environment (None: set by neither)."""
        self.loaded.pop(name, None)
        loaded = read_secret(name, max_bytes=self._max_bytes, environ=self._environ)
        if loaded is not None:
            self.loaded[name] = loaded
        return loaded

    def config_file(self, name: str, path: Path, *, max_bytes: int) -> str:
        """A configuration file reloaded with the secrets (the AI catalogue), as text.

        Tracked under ``name`` like a secret, so it is polled and reported too.

        Raises:
            SecretError: unreadable, too large or not UTF-8.
        """
        signature = file_signature(path)
        text = read_text_file(name, path, max_bytes=max_bytes)
        self.loaded[name] = LoadedSecret(name, SecretStr(text), "file", path, signature)
        return text


class ReloadablePart(Protocol):
    """A service's reloadable configuration (e.g. the AI catalogue and provider keys)."""

    name: str

    def prepare(self, reader: SecretReader) -> Swap:
        """Read through ``reader``, build and validate the new configuration; return
        the function that puts it in use. Raise (SecretError, ValueError) to refuse."""
        ...


@dataclass(frozen=True, slots=True)
class ReloadFailure:
    secret: str
    reason: str


@dataclass(slots=True)
class ReloadReport:
    """Names only: which secrets changed, which were read again unchanged, which failed."""

    trigger: Trigger
    reloaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[ReloadFailure] = field(default_factory=list)


class SecretsRegistry:
    """The process's reloadable parts and the secrets they last loaded."""

    def __init__(
        self,
        *,
        metrics: PlatformMetrics,
        max_bytes: int,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._metrics = metrics
        self._max_bytes = max_bytes
        self._environ = os.environ if environ is None else environ
        # Keyed by part and secret names, which come from code, settings and the
        # catalogue (at most 64 providers): bounded by configuration, not by traffic.
        self._parts: dict[str, ReloadablePart] = {}  # guard: allow XG005 parts come from code
        self._current: dict[str, LoadedSecret] = {}  # guard: allow XG005 names from config
        self._changed_at: dict[str, float] = {}  # guard: allow XG005 names from config
        self._names: dict[str, frozenset[str]] = {}  # guard: allow XG005 one per part
        self._lock = asyncio.Lock()

    # --- registration -----------------------------------------------------------------

    def register(self, part: ReloadablePart) -> None:
        """Load ``part`` now and keep it for later reloads.

        Raises:
            SecretError, ValueError: the part's configuration is invalid (start-up
                should fail on it rather than serve without it).
        """
        reader = self._reader()
        swap = part.prepare(reader)
        swap()
        self._parts[part.name] = part
        self._remember(part.name, reader.loaded, ReloadReport("startup"))

    def unregister(self, part_name: str) -> None:
        """Forget a part (its service stopped) and the secrets only it read."""
        self._parts.pop(part_name, None)
        self._forget(self._names.pop(part_name, frozenset()))

    # --- what parts and the poller ask ------------------------------------------------

    def changed_at(self, name: str) -> float | None:
        """When ``name`` last got a new value after start-up (epoch seconds), or None."""
        return self._changed_at.get(name)

    def watched_files(self) -> dict[Path, FileSignature | None]:
        """Every file a loaded secret came from, with its signature when it was read."""
        return {
            loaded.path: loaded.signature
            for loaded in self._current.values()
            if loaded.path is not None
        }

    # --- reloading --------------------------------------------------------------------

    async def reload(self, trigger: Trigger) -> ReloadReport:
        """Read every part's secrets again; swap in each part that validates."""
        async with self._lock:
            report = ReloadReport(trigger)
            for part in list(self._parts.values()):
                self._reload_part(part, report)
            log.info(
                "secrets.reloaded",
                trigger=trigger,
                reloaded=report.reloaded,
                unchanged=report.unchanged,
                failed=[f"{failure.secret}: {failure.reason}" for failure in report.failed],
            )
            return report

    def _reload_part(self, part: ReloadablePart, report: ReloadReport) -> None:
        reader = self._reader()
        try:
            swap = part.prepare(reader)
        except (SecretError, ValueError) as exc:
            # The running configuration stays. The secret at fault is named; the
            # part's other changed secrets are not applied either, and say why.
            culprit = exc.name if isinstance(exc, SecretError) else part.name
            reason = exc.reason if isinstance(exc, SecretError) else _one_line(exc)
            self._fail(report, culprit, reason)
            for name, loaded in reader.loaded.items():
                if name == culprit:
                    continue
                if loaded.same_value(self._current.get(name)):
                    report.unchanged.append(name)
                else:
                    self._fail(report, name, f"not applied: {culprit} failed")
            # (Not "secret=": the log redacts fields of that name.)
            log.warning(
                "secrets.reload_refused", part=part.name, secret_name=culprit, reason=reason
            )
            return
        swap()
        self._remember(part.name, reader.loaded, report)

    def _remember(
        self, part_name: str, loaded: dict[str, LoadedSecret], report: ReloadReport
    ) -> None:
        # A secret the part no longer reads (a provider left the catalogue) is no
        # longer polled nor reported.
        previous_names = self._names.get(part_name, frozenset())
        self._names[part_name] = frozenset(loaded)
        self._forget(previous_names - set(loaded))
        for name, secret in loaded.items():
            previous = self._current.get(name)
            if secret.same_value(previous):
                report.unchanged.append(name)
            else:
                if previous is not None:
                    self._changed_at[name] = secret.loaded_at
                report.reloaded.append(name)
            self._current[name] = secret
            self._metrics.secret_loaded.labels(secret=name).set(secret.loaded_at)

    def _fail(self, report: ReloadReport, name: str, reason: str) -> None:
        report.failed.append(ReloadFailure(name, reason))
        self._metrics.secret_reload_failures.labels(secret=name).inc()

    def _forget(self, names: Iterable[str]) -> None:
        still_read = set().union(*self._names.values()) if self._names else set()
        for name in set(names) - still_read:
            self._current.pop(name, None)
            self._changed_at.pop(name, None)
            with contextlib.suppress(KeyError):
                self._metrics.secret_loaded.remove(name)

    def _reader(self) -> SecretReader:
        return SecretReader(max_bytes=self._max_bytes, environ=self._environ)


def _one_line(exc: Exception) -> str:
    """A validation error on one line, short enough for a log field and an answer."""
    text = " ".join(str(exc).split())
    return text[:500]
