"""The live-progress hub of one app: caps, tickets, metrics, and the run a stream opens on."""

from __future__ import annotations

import re

from xynergy.platform.auth.context import AuthContext
from xynergy.platform.db.session import unit_of_work
from xynergy.platform.exceptions import NotFound
from xynergy.platform.runtime import Platform
from xynergy.system_runtime.config import RuntimeSettings
from xynergy.system_runtime.engine.context import RuntimeContext
from xynergy.system_runtime.engine.events import RunEvents
from xynergy.system_runtime.live.connections import StreamLimits, StreamSlot
from xynergy.system_runtime.live.metrics import RuntimeMetrics
from xynergy.system_runtime.live.tickets import TicketStore
from xynergy.system_runtime.runs import service as runs
from xynergy.system_runtime.runs.schemas import RunDetail

__all__ = ["LiveProgress", "OpenedStream"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


class OpenedStream:
    """What a stream starts from: the run as its tenant sees it, and its slot."""

    __slots__ = ("slot", "snapshot")

    def __init__(self, snapshot: RunDetail, slot: StreamSlot) -> None:
        self.snapshot, self.slot = snapshot, slot


class LiveProgress:
    """Built with the app; opened and closed with it (``start``/``stop`` are its hooks)."""

    def __init__(self, settings: RuntimeSettings, events: RunEvents) -> None:
        self.settings, self.events = settings, events
        self.limits = StreamLimits(
            per_tenant=settings.live_connections_per_tenant,
            per_process=settings.live_connections_per_process,
        )
        self._tickets: TicketStore | None = None
        self._metrics: RuntimeMetrics | None = None

    @property
    def tickets(self) -> TicketStore:
        if self._tickets is None:
            raise RuntimeError("the System Runtime's live progress is not started")
        return self._tickets

    async def start(self, platform: Platform) -> None:
        self._tickets = TicketStore(
            redis=platform.redis,
            key_prefix=platform.settings.redis_key_prefix,
            ttl_seconds=self.settings.ws_ticket_ttl_seconds,
            max_in_process=self.settings.ws_tickets_max_in_process,
            sessions=platform.sessionmaker,
        )
        self._metrics = RuntimeMetrics(platform, self.settings)
        self._metrics.start(self.events)

    async def stop(self, platform: Platform) -> None:
        if self._metrics is not None:
            await self._metrics.stop()
            self._metrics = None

    async def open_stream(
        self, context: RuntimeContext, caller: AuthContext, run_id: str
    ) -> OpenedStream:
        """The run's snapshot for ``caller``'s tenant and a stream slot.

        Raises:
            NotFound: no such run in the caller's tenant (another tenant's included).
            TooManyStreams: a cap on open streams is reached.
        """
        if not _RUN_ID.fullmatch(run_id):
            raise NotFound("No such workflow run.")
        async with unit_of_work(context.platform.sessionmaker) as session:
            snapshot = await runs.get_run(
                context, session, tenant_id=caller.tenant_id, run_id=run_id
            )
        return OpenedStream(snapshot, self.limits.acquire(caller.tenant_id))
