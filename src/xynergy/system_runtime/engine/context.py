"""What a run's code reaches while DBOS executes it.

DBOS calls workflow functions by name, with only their recorded arguments, so
the process's runtime (platform pools, catalogue, settings) is found here. One
process serves one runtime: several apps in one process (tests) bind in turn and
the first bound one executes runs, like the one DBOS engine they share.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xynergy.platform.runtime import Platform
from xynergy.system_runtime.catalogue import Catalogue
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.definitions.lookup import CheckedSpecs
from xynergy.system_runtime.engine.events import RunEvents
from xynergy.system_runtime.engine.record_writer import RecordWriter

__all__ = ["RuntimeContext", "bind", "current", "unbind"]


@dataclass(frozen=True, slots=True)
class RuntimeContext:
    platform: Platform
    catalogue: Catalogue
    settings: RuntimeSettings
    events: RunEvents
    records: RecordWriter
    checked_specs: CheckedSpecs = field(default_factory=CheckedSpecs)


# One per System Runtime app alive in the process: bounded by the apps, not by traffic.
_bound: list[RuntimeContext] = []  # guard: allow XG004 one per running app


def bind(context: RuntimeContext) -> None:
    _bound.append(context)


def unbind(context: RuntimeContext) -> None:
    if context in _bound:
        _bound.remove(context)


def current() -> RuntimeContext:
    """The runtime executing runs in this process.

    Raises:
        RuntimeError: no System Runtime app is running in this process.
    """
    if not _bound:
        raise RuntimeError("no System Runtime is running in this process")
    return _bound[0]
